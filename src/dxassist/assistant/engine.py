"""The assistant at run time: symptoms and/or free text in, a differential out.

Needs only the model files under ``models/assist/`` (the lexicon, names and DDXPlus
severities are stored in the model's JSON), never the benchmark data.
"""

from __future__ import annotations

import difflib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dxassist.assistant.data import DATASETS, VALUE_ALIASES, VALUE_NAMES, YES, check_dataset
from dxassist.assistant.lexicon import Lexicon, Mapping, resolve
from dxassist.assistant.model import MIN_GAIN, SymptomModel
from dxassist.errors import InputError

DISCLAIMER = (
    "Research use only: not a medical device. An auxiliary opinion from symptom benchmarks; "
    "the clinician decides."
)
#: longest free text accepted (characters)
MAX_TEXT = 5000
#: most symptoms one request may carry
MAX_SYMPTOMS = 500
#: DDXPlus severity at or below which a likely condition is flagged (1 = most severe)
RED_FLAG_SEVERITY = 2
RED_FLAG_PROBABILITY = 0.05
#: the evidence is "weak" (the ranking carries little information) when the top probability
#: is below the model's stop threshold and any of these holds: fewer symptoms answered yes,
WEAK_MIN_PRESENT = 2
#: more effective candidate diseases exp(entropy) than the differential shows (5),
WEAK_EFFECTIVE_DISEASES = 5.0
#: or less information gained from the prior than one bit: KL(posterior || prior) < ln 2
WEAK_MIN_NATS = float(np.log(2.0))
#: an evidence weight below this is shown as neither for nor against (prints as +0.00)
EVIDENCE_MIN = 0.005


def assist_models_dir() -> Path:
    env = os.environ.get("DXASSIST_MODELS_DIR")
    base = Path(env) if env else Path(__file__).resolve().parents[3] / "models"
    return base / "assist"


class SymptomInputError(InputError):
    """A symptom code or value that the chosen vocabulary does not have."""


@dataclass
class Opinion:
    dataset: str
    model: str
    differential: list[dict[str, Any]]
    mappings: list[dict[str, Any]]
    used: dict[str, str]
    next_questions: list[dict[str, Any]]
    confident: bool
    stop_reason: str
    red_flags: list[str]
    notes: list[str] = field(default_factory=list)
    information: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "differential": self.differential,
            "mappings": self.mappings,
            "symptoms_used": self.used,
            "next_questions": self.next_questions,
            "confident": self.confident,
            "stop_reason": self.stop_reason,
            "red_flags": self.red_flags,
            "notes": self.notes,
            "information": self.information,
            "disclaimer": DISCLAIMER,
        }


def parse_value(raw: str, where: str) -> int:
    key = str(raw).strip().lower()
    if key not in VALUE_ALIASES:
        raise SymptomInputError(
            f"{where}: value {raw!r} is not one of yes / no / unsure (also y/n/?, 1/0/2, "
            "present/absent, not sure)"
        )
    return VALUE_ALIASES[key]


class Assistant:
    """One dataset's model, lexicon and names."""

    def __init__(self, model: SymptomModel) -> None:
        self.model = model
        meta = model.meta
        self.symptom_names: dict[str, str] = dict(meta.get("symptom_names", {}))
        self.disease_names: dict[str, str] = dict(meta.get("disease_names", {}))
        self.questions: dict[str, str] = dict(meta.get("questions", {}))
        self.severity: dict[str, int] = {k: int(v) for k, v in meta.get("severity", {}).items()}
        self.lexicon = Lexicon(dict(meta.get("lexicon", {})), self.symptom_names)
        self.uses_demographics = False
        # lookup of a symptom by code or by (case-insensitive) display name
        self._lookup: dict[str, str] = {}
        for s in model.symptoms:
            self._lookup.setdefault(s.lower(), s)
        for s, n in self.symptom_names.items():
            self._lookup.setdefault(n.lower(), s)
            if n.endswith(")") and " (" in n:  # "咳嗽 (cough)", "fever (E_91)"
                head, _, tail = n[:-1].partition(" (")
                self._lookup.setdefault(tail.lower(), s)
                self._lookup.setdefault(head.lower(), s)

    @property
    def dataset(self) -> str:
        return self.model.dataset

    def symptom_code(self, raw: str) -> str:
        key = raw.strip().lower()
        if key in self._lookup:
            return self._lookup[key]
        close = difflib.get_close_matches(key, list(self._lookup), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(self._lookup[c]) for c in close)}?" if close else ""
        raise SymptomInputError(
            f"symptom {raw!r} is not in the {self.dataset} vocabulary{hint} "
            f"(list them with `dxassist assist symptoms --dataset {self.dataset}`)"
        )

    def vocabulary(self) -> list[dict[str, Any]]:
        m = self.model
        return [
            {
                "code": s,
                "name": self.symptom_names.get(s, s),
                "question": self.question(s),
                # False: a diagnosis or test term, accepted as input but never asked
                "asked": s not in m.not_asked,
                **({"not_asked": m.not_asked[s]} if s in m.not_asked else {}),
                **({"asked_after": m.parents[s]} if s in m.parents else {}),
            }
            for s in m.symptoms
        ]

    def question(self, code: str) -> str:
        if code in self.questions:
            return self.questions[code]
        name = self.symptom_names.get(code, code)
        return f"Does the patient have {name}?"

    def opinion(
        self,
        symptoms: dict[str, str] | None = None,
        text: str | None = None,
        *,
        age: int | None = None,
        sex: str | None = None,
        top: int = 5,
        n_questions: int = 3,
    ) -> Opinion:
        """The differential for ``symptoms`` ({code or name: yes/no/unsure}) and ``text``.

        Structured symptoms override what the text says about the same symptom."""
        symptoms = symptoms or {}
        if len(symptoms) > MAX_SYMPTOMS:
            raise SymptomInputError(f"too many symptoms ({len(symptoms)}); at most {MAX_SYMPTOMS}")
        if text is not None and len(text) > MAX_TEXT:
            raise SymptomInputError(
                f"text is {len(text)} characters; at most {MAX_TEXT}: shorten it"
            )
        notes: list[str] = []
        mappings: list[Mapping] = self.lexicon.map(text) if text else []
        state: dict[str, int] = resolve(mappings)
        for raw, value in symptoms.items():
            code = self.symptom_code(raw)
            state[code] = parse_value(value, f"symptom {raw!r}")
        if text and not mappings:
            notes.append(
                "no symptom of this vocabulary was recognised in the text; enter symptoms "
                "from the list instead"
            )
        if age is not None or sex is not None:
            notes.append(
                "age and sex are recorded but not used: none of the training data of this "
                "model carries them"
            )
        m = self.model
        answers = {m.sym_index[s]: v for s, v in state.items()}
        logits = m.logits_of(answers)
        p = m.probs_of_logits(logits)
        order = np.argsort(-p)[: max(1, min(top, len(p)))]
        keys = list(answers.items())
        if keys:
            sel = m.W[[k for _, k in keys], :, [s for s, _ in keys]]  # (n, D)
            mix = sel @ p
        else:
            sel, mix = np.zeros((0, len(p))), np.zeros(0)
        differential = [self._entry(int(d), p, sel, mix, keys) for d in order]
        gains = m.question_gains(logits, answers)
        q_order = np.argsort(-gains)[:n_questions]
        questions = [
            {
                "symptom": m.symptoms[int(s)],
                "name": self.symptom_names.get(m.symptoms[int(s)], m.symptoms[int(s)]),
                "question": self.question(m.symptoms[int(s)]),
                "information_gain": round(float(gains[s]), 4),
            }
            for s in q_order
            if np.isfinite(gains[s]) and gains[s] >= MIN_GAIN
        ]
        confident = bool(p.max() >= m.stop_threshold)
        if confident:
            reason = f"top probability {p.max():.2f} >= stop threshold {m.stop_threshold}"
        elif not questions:
            reason = "no remaining question is expected to change the differential"
        else:
            reason = "not confident yet: ask the next question"
        if not answers:
            notes.append("no symptoms given: the differential is the prior of the data set")
        info = self.information(p, answers)
        if m.meta.get("prior") == "uniform":
            notes.append(
                f"the probabilities assume all {len(m.diseases)} conditions are equally common "
                "(the knowledge base has no prevalence data), so rare diseases are overstated "
                "and common ones understated; read the list as 'fits the symptoms', not as "
                "how likely each disease is in your patient"
            )
        if answers and info["weak"]:
            notes.append(
                "too little information to rank these "
                f"({info['present']} symptom(s) present; spread over about "
                f"{info['effective_diseases']:.0f} diseases; {info['nats_from_prior']:.2f} nats "
                "gained over the prior): ask the next questions"
            )
        return Opinion(
            dataset=self.dataset,
            model=m.name,
            differential=differential,
            mappings=[x.as_dict() for x in mappings],
            used={s: VALUE_NAMES[v] for s, v in state.items()},
            next_questions=questions,
            confident=confident,
            stop_reason=reason,
            red_flags=self._red_flags(p, answers),
            notes=notes,
            information=info,
        )

    def information(self, p: np.ndarray, answers: dict[int, int]) -> dict[str, Any]:
        """How much the answers say: symptoms present, the effective number of candidate
        diseases exp(H(p)), and KL(p || prior) in nats; ``weak`` by the WEAK_* rules."""
        m = self.model
        prior = m.probs_of_logits(m.b.copy())
        q = np.clip(p, 1e-300, None)
        entropy = float(-(q * np.log(q)).sum())
        kl = float((q * (np.log(q) - np.log(np.clip(prior, 1e-300, None)))).sum())
        present = sum(1 for v in answers.values() if v == YES)
        effective = float(np.exp(entropy))
        # a confident differential (top >= the stop threshold chosen on validation) is not
        # weak, even from one symptom (GMD-12: 乳房胀痛 alone gives mastitis 0.92)
        weak = float(p.max()) < m.stop_threshold and (
            present < WEAK_MIN_PRESENT or effective > WEAK_EFFECTIVE_DISEASES or kl < WEAK_MIN_NATS
        )
        return {
            "present": present,
            "effective_diseases": round(effective, 2),
            "nats_from_prior": round(max(0.0, kl), 3),
            "weak": bool(weak),
            "rule": f"weak if the top probability is below the stop threshold "
            f"({m.stop_threshold:g}) and: fewer than {WEAK_MIN_PRESENT} symptoms present, "
            "or more than "
            f"{WEAK_EFFECTIVE_DISEASES:.0f} effective diseases (exp entropy), or under 1 bit "
            "(ln 2 nats) gained over the prior",
        }

    def _entry(
        self, d: int, p: np.ndarray, sel: np.ndarray, mix: np.ndarray, keys: list[tuple[int, int]]
    ) -> dict[str, Any]:
        """One row of the differential. ``sel`` (n, D) holds W[value, :, symptom] of the n
        answers, ``mix`` (n,) their mean under the current differential."""
        m = self.model
        name = m.diseases[d]
        rows_for: list[dict[str, Any]] = []
        rows_against: list[dict[str, Any]] = []
        if keys:
            contrib = sel[:, d] - mix  # log-odds of each answer against the current mixture
            order = np.argsort(-contrib)
            for i in order[:5]:
                if contrib[i] >= EVIDENCE_MIN:
                    rows_for.append(self._row(keys[i], float(contrib[i])))
            for i in order[::-1][:5]:
                if contrib[i] <= -EVIDENCE_MIN:
                    rows_against.append(self._row(keys[i], float(contrib[i])))
        entry: dict[str, Any] = {
            "disease": name,
            "name": self.disease_names.get(name, name),
            "probability": round(float(p[d]), 4),
            "evidence_for": rows_for,
            "evidence_against": rows_against,
        }
        if name in self.severity:
            entry["severity"] = self.severity[name]
        return entry

    def _row(self, key: tuple[int, int], weight: float) -> dict[str, Any]:
        s, k = key
        code = self.model.symptoms[s]
        return {
            "symptom": code,
            "name": self.symptom_names.get(code, code),
            "value": VALUE_NAMES[k],
            "weight": round(weight, 3),
        }

    def supports(self, d: int, s: int) -> bool:
        """Whether a "yes" to symptom ``s`` is positive evidence for disease ``d``: the
        knowledge base links them (kb_bayes), else "yes" is likelier under ``d`` than on
        average over the diseases."""
        m = self.model
        if m.kind == "kb_bayes":
            return bool(m.A[YES, d, s] > float(m.meta.get("p_out", 0.0)))
        return bool(m.A[YES, d, s] > float(m.A[YES, :, s].mean()))

    def _red_flags(self, p: np.ndarray, answers: dict[int, int]) -> list[str]:
        """A severe condition (severity <= RED_FLAG_SEVERITY) at p >= RED_FLAG_PROBABILITY,
        and only if at least one symptom answered yes is one that its knowledge base lists:
        a flag resting on no positive evidence is not raised."""
        flags = []
        m = self.model
        present = [s for s, v in answers.items() if v == YES]
        equal_prior = m.meta.get("prior") == "uniform"
        for d, name in enumerate(m.diseases):
            sev = self.severity.get(name)
            if sev is None or sev > RED_FLAG_SEVERITY or p[d] < RED_FLAG_PROBABILITY:
                continue
            support = [s for s in present if self.supports(d, s)]
            if not support:
                continue
            names = ", ".join(self.symptom_names.get(m.symptoms[s], m.symptoms[s]) for s in support)
            caveat = " if every condition were equally common" if equal_prior else ""
            flags.append(
                f"{self.disease_names.get(name, name)} (severity {sev} of 5, 1 = most "
                f"severe) would have probability {p[d]:.2f}{caveat}; it fits: {names}. "
                "Rule it out urgently if the history makes it possible"
            )
        return flags


_lock = threading.Lock()
_loaded: dict[str, Assistant] = {}


def get_assistant(dataset: str, folder: Path | None = None) -> Assistant:
    """The (cached) assistant of ``dataset``; raises ModelError if its files are missing."""
    from dxassist.assistant.train import model_name

    key = check_dataset(dataset)
    folder = folder or assist_models_dir()
    cache_key = f"{folder}:{key}"
    with _lock:
        if cache_key not in _loaded:
            _loaded[cache_key] = Assistant(SymptomModel.load(folder, model_name(key)))
        return _loaded[cache_key]


__all__ = ["DATASETS", "Assistant", "Opinion", "get_assistant", "parse_value"]
