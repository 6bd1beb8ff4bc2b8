"""A short model card per symptom model, written from the training record and evaluation."""

from __future__ import annotations

from typing import Any

from dxassist.assistant.evaluate import _fmt, table
from dxassist.assistant.model import SymptomModel


def card(model: SymptomModel, result: dict[str, Any]) -> str:
    m, meta = model, model.meta
    lines = [
        f"# Model card: {m.name}",
        "",
        f"Files: `{m.name}.npz` (weights W, bias b, answer model A) and `{m.name}.json` "
        "(vocabulary, temperature, stop threshold, lexicon, names, selection record). "
        f"Evaluation: `{m.name}.eval.json`.",
        "",
        "**Research use only. Not a medical device.** An auxiliary opinion for a clinician; "
        f"the clinician decides. Data licence: {meta.get('licence', 'see PROVENANCE.md')}. "
        f"Cite: {meta.get('citation', '')}.",
        "",
        "## Data",
        f"{meta.get('dataset_title', m.dataset)}, read in place from "
        "`shared/data/symptoms` (see the PROVENANCE.md there). "
        f"{len(m.symptoms)} symptoms, {len(m.diseases)} diseases.",
    ]
    if m.kind == "kb_bayes":
        lines += [
            "No training data: the model is naive Bayes over the knowledge files "
            f"(an evidence linked to a condition is present with p = {meta['p_in']}, any other "
            f"with p = {meta['p_out']}; uniform prior; stop threshold {m.stop_threshold}). These "
            "settings were fixed before looking at the test patients and were not tuned. The "
            "2,611 test patients are used for evaluation only.",
            "",
            f"**Equal prevalence.** The uniform prior takes all {len(m.diseases)} conditions as "
            "equally common (the knowledge base has no prevalence data), so rare, severe "
            "conditions (Ebola, for one) are overstated against common ones, and the "
            "probabilities are not calibrated to any patient population. Every DDXPlus answer "
            "says so in its notes; a red flag needs at least one symptom answered yes that the "
            "condition's knowledge base lists.",
        ]
    else:
        lines += [
            f"Official train split minus a validation split ({meta.get('val_cases')} cases: "
            "the official dev split for GMD-12, else a seeded stratified 15 % of train) for "
            "model choice; the test split was used once, for the numbers below.",
            "",
            "## Model and selection",
            f"Chosen: **{m.kind}** ({'alpha' if m.kind == 'naive_bayes' else 'C'} = "
            f"{meta.get('alpha', meta.get('C'))}), temperature {m.temperature:.3f} (fitted on "
            f"validation), stop threshold {m.stop_threshold} (fewest validation turns within "
            f"1 point of the best validation interactive accuracy), at most {m.max_turns} turns. "
            "Refitted on train + validation. Validation record:",
            "",
            "| kind | hyper | T | val full top-1 | val explicit top-1 | val interactive top-1 "
            "| val turns |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in meta.get("candidates", []):
            lines.append(
                f"| {c['kind']} | {c['hyperparameter']} | {c['temperature']} | "
                f"{c['val_full_top1']} | {c['val_explicit_top1']} | {c['val_interactive_top1']}"
                f" | {c['val_interactive_turns']} |"
            )
    never = len(m.not_asked)
    lines += [
        "",
        "## Interview rules (inference time)",
        f"{never} of the {len(m.symptoms)} vocabulary terms are diagnoses or tests "
        "(rules and lists in `src/dxassist/assistant/askable.py`, from the dataset's own "
        "disease labels plus short documented word lists): they are accepted as input but "
        "never asked as a next question.",
    ]
    if m.parents:
        lines.append(
            f"{len(m.parents)} sub-questions (DDXPlus `code_question`, e.g. 'Is the rash "
            "swollen?') are asked only after their parent question was answered yes. Five "
            "evidences name a parent that is not in the released evidence file; they are asked "
            "as ordinary questions."
        )
    lines += [
        "These rules apply in the interactive evaluation too. They changed no weight and no "
        "selection step; the test table below was re-run with them.",
    ]
    for h in result.get("history", []):
        lines.append(f"- {h}")
    lines += [
        "",
        "## Test results (95 % bootstrap CIs over test cases)",
        "",
        "```",
        table(result),
        "```",
        "",
        f"Interactive top-1 {_fmt(result['interactive_top1'])}, average turns "
        f"{_fmt(result['average_turns'], 2)}; the upper bound (all implicit symptoms given) "
        f"{_fmt(result['upper_bound_top1'])}.",
        "",
        "## Reproduce",
        "```sh",
        "pip install -e '.[train]'",
        f"dxassist assist train --dataset {m.dataset}      # writes models/assist/{m.name}.*",
        f"dxassist assist evaluate --dataset {m.dataset}",
        f"dxassist assist cards --dataset {m.dataset}     # re-render this card after the "
        "published numbers change (no training)",
        "```",
        "",
        "Published numbers: a row without `*` was read in its cited source (a README table "
        "at a pinned commit, or the paper's table); the `source:` lines name them. Rows "
        "with `*` are recalled or only seen in a third-party transcription. The `note` "
        "of each row in the eval JSON gives caveats (protocol, dataset version).",
        "",
        "## Limits",
        "- Benchmark data from online consultations (or simulation): not validated on hospital "
        "patients. Age and sex are not used.",
        "- The interactive protocol answers an unmentioned symptom with the benchmark's "
        "'unmentioned' answer, as the papers do; a clinician's 'not sure' is treated the same.",
        "- Free text: a lexicon with negation rules, not a language model; check the mapping "
        "shown next to every answer.",
        "- The 'all implicit given' bound leaves every other symptom unasked. The interview "
        "can beat it: a 'not sure' answer (the record does not mention the symptom) is itself "
        "evidence for a naive-Bayes model, because which symptoms a doctor records depends "
        "on the disease. That is a property of these benchmarks, not of patients.",
        "- The temperature was fitted on validation for the model trained without the "
        "validation cases, then kept for the refitted model.",
    ]
    return "\n".join(lines) + "\n"
