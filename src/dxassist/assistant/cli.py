"""``dxassist assist``: a differential from symptoms or free text; ``evaluate``; ``train``;
``cards`` (re-render the model cards with the current published numbers).

Exit codes: 0 done; 2 bad command line; 3 bad input (unknown symptom or value, text too
long, data missing); 4 the symptom model cannot be loaded; 5 the train extra is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dxassist.assistant.data import (
    DATASET_INFO,
    DATASETS,
    DEFAULT_DATASET,
    DEFAULT_DATASET_ZH,
    default_dataset,
    describe,
)
from dxassist.errors import DxAssistError

EXIT_USAGE, EXIT_DEPENDENCY = 2, 5


def _err(message: str) -> None:
    print(f"dxassist assist: {message}", file=sys.stderr, flush=True)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, allow_nan=False), flush=True)


def _parse_symptoms(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        code, sep, value = item.partition("=")
        if not sep or not code.strip():
            raise _Usage(
                f"--symptom {item!r} must be CODE=VALUE, e.g. --symptom 咳嗽=yes or "
                "--symptom fever=no (values: yes, no, unsure)"
            )
        out[code.strip()] = value.strip()
    return out


class _Usage(Exception):
    pass


def _print_opinion(op: dict[str, Any]) -> None:
    print(f"Differential ({op['dataset']}, model {op['model']}):")
    for i, d in enumerate(op["differential"], 1):
        print(f"  {i}. {d['name']:<40} {d['probability']:.3f}")
        if d["evidence_for"]:
            ev = ", ".join(
                f"{e['name']}={e['value']} ({e['weight']:+.2f})" for e in d["evidence_for"]
            )
            print(f"       for: {ev}")
        if d["evidence_against"]:
            ev = ", ".join(
                f"{e['name']}={e['value']} ({e['weight']:+.2f})" for e in d["evidence_against"]
            )
            print(f"       against: {ev}")
    if op["mappings"]:
        print("Text mapped to symptoms:")
        for mp in op["mappings"]:
            cue = f" (cue {mp['cue']!r})" if mp["cue"] else ""
            print(
                f"  {mp['text']!r} [{mp['start']}:{mp['end']}] -> {mp['name']} = {mp['value']}{cue}"
            )
    for flag in op["red_flags"]:
        print(f"RED FLAG: {flag}")
    print(f"Status: {op['stop_reason']}")
    if op["next_questions"] and not op["confident"]:
        print("Next questions worth asking:")
        for q in op["next_questions"]:
            print(f"  - {q['question']}  [{q['symptom']}]")
    for note in op["notes"]:
        print(f"Note: {note}")
    print(op["disclaimer"])


def cmd_opinion(args: argparse.Namespace) -> int:
    from dxassist.assistant.engine import get_assistant, parse_value

    defaulted = not args.dataset
    dataset = args.dataset or default_dataset(args.text)
    try:
        symptoms = _parse_symptoms(args.symptom or [])
    except _Usage as exc:
        _err(str(exc))
        return EXIT_USAGE
    if args.sex is not None and args.sex.upper() not in ("F", "M"):
        _err(f"--sex {args.sex!r}: use F or M")
        return EXIT_USAGE
    if args.age is not None and not 0 <= args.age <= 130:
        _err(f"--age {args.age}: give an age in years, 0-130")
        return EXIT_USAGE
    assistant = get_assistant(dataset)
    kwargs: dict[str, Any] = {"age": args.age, "sex": args.sex, "top": args.top}

    def opinion(answers: dict[str, str]) -> dict[str, Any]:
        out = assistant.opinion(answers, args.text, **kwargs).as_dict()
        if defaulted:
            out["notes"].insert(0, default_note(assistant.dataset))
        return out

    op = opinion(symptoms)
    if not args.interactive:
        _print_json(op) if args.json else _print_opinion(op)
        return 0
    # interactive: ask the best question, read y / n / u (not sure) / q, until confident
    asked: set[str] = set()
    answers = dict(symptoms)
    while True:
        _print_json(op) if args.json else _print_opinion(op)
        pending = [q for q in op["next_questions"] if q["symptom"] not in asked]
        if op["confident"] or not pending:
            return 0
        q = pending[0]
        print(f"\n? {q['question']} [y/n/u = not sure, q = stop] ", end="", flush=True)
        line = sys.stdin.readline()
        if not line or line.strip().lower() in ("q", "quit", "exit"):
            print()
            return 0
        try:
            value = parse_value(line.strip() or "u", "answer")
        except DxAssistError as exc:
            print(f"  {exc}")
            continue
        asked.add(q["symptom"])
        answers[q["symptom"]] = ("yes", "no", "unsure")[value]
        op = opinion(answers)


def default_note(dataset: str) -> str:
    """The note added when no dataset was named."""
    return (
        f"no dataset named: used {describe(dataset)}, the default for "
        f"{'Chinese' if dataset == DEFAULT_DATASET_ZH else 'English'} text; choose another "
        "with --dataset (see `dxassist assist datasets`)"
    )


def cmd_datasets(args: argparse.Namespace) -> int:
    rows = [{"dataset": n, **DATASET_INFO[n].__dict__} for n in DATASETS]
    if args.json:
        _print_json(rows)
        return 0
    for n in DATASETS:
        print(describe(n))
    print(
        f"Default: {DEFAULT_DATASET} for English (or no) text, {DEFAULT_DATASET_ZH} for "
        "Chinese text."
    )
    return 0


def cmd_symptoms(args: argparse.Namespace) -> int:
    from dxassist.assistant.engine import get_assistant

    assistant = get_assistant(args.dataset)
    rows = assistant.vocabulary()
    if args.json:
        _print_json(rows)
    else:
        print("code\tname\tasked")
        for r in rows:
            if r["asked"]:
                asked = f"after {r['asked_after']}=yes" if "asked_after" in r else "yes"
            else:
                asked = f"no: {r['not_asked']}"
            print(f"{r['code']}\t{r['name']}\t{asked}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from dxassist.assistant import data
    from dxassist.assistant.engine import get_assistant
    from dxassist.assistant.evaluate import evaluate, table

    names = list(DATASETS) if args.dataset == "all" else [data.check_dataset(args.dataset)]
    results = []
    for name in names:
        model = get_assistant(name).model
        result = evaluate(model, data.load(name), split=args.split)
        results.append(result)
        if args.json:
            _print_json(result)
        else:
            print(table(result))
            print()
    if args.out:
        Path(args.out).write_text(
            json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        _err("training needs scikit-learn: pip install -e '.[train]'")
        return EXIT_DEPENDENCY
    from dxassist.assistant import data
    from dxassist.assistant.card import card
    from dxassist.assistant.engine import assist_models_dir
    from dxassist.assistant.evaluate import evaluate, table
    from dxassist.assistant.model import SymptomModel
    from dxassist.assistant.train import attach_runtime, train

    out = Path(args.out) if args.out else assist_models_dir()
    names = list(DATASETS) if args.dataset == "all" else [data.check_dataset(args.dataset)]
    for name in names:
        bench = data.load(name)
        print(f"training {name} ...", flush=True)
        model = attach_runtime(train(bench, log=print), bench)
        npz, meta = model.save(out)
        # evaluate what was written (float32 on disk), so `assist evaluate` gives the same table
        model = SymptomModel.load(out, model.name)
        result = evaluate(model, bench, "test")
        (out / f"{model.name}.eval.json").write_text(
            json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
        (out / f"{model.name}.md").write_text(card(model, result), encoding="utf-8")
        print(table(result))
        print(f"wrote {npz}, {meta} and the model card\n", flush=True)
    return 0


def cmd_cards(args: argparse.Namespace) -> int:
    """Re-render the cards and eval JSON with the current published numbers, from the
    stored evaluation: no training, no re-evaluation, no data needed."""
    from dxassist.assistant import data
    from dxassist.assistant.card import card
    from dxassist.assistant.engine import assist_models_dir
    from dxassist.assistant.evaluate import with_current_published
    from dxassist.assistant.model import SymptomModel
    from dxassist.errors import ModelError

    folder = Path(args.dir) if args.dir else assist_models_dir()
    names = list(DATASETS) if args.dataset == "all" else [data.check_dataset(args.dataset)]
    for name in names:
        model = SymptomModel.load(folder, f"dxassist-assist-{name}")
        ev = folder / f"{model.name}.eval.json"
        try:
            result = json.loads(ev.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"{ev} is missing or not JSON ({exc}); run `dxassist assist train --dataset "
                f"{name}` to evaluate the model and write it"
            ) from exc
        if not isinstance(result, dict) or result.get("dataset") != name:
            raise ModelError(f"{ev} is not the evaluation of {name}; re-run assist train")
        result = with_current_published(result)
        ev.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        (folder / f"{model.name}.md").write_text(card(model, result), encoding="utf-8")
        print(f"re-rendered {folder / model.name}.md and .eval.json", flush=True)
    return 0


def _wrap(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            code: int = func(args)
            return code
        except DxAssistError as exc:
            _err(str(exc))
            return exc.exit_code

    return run


def register(sub: Any) -> None:
    """Add ``assist`` (and its ``evaluate`` / ``train`` / ``symptoms``) to the dxassist CLI."""
    names = ", ".join(DATASETS)
    listing = "\n".join(f"  {describe(n)}" for n in DATASETS)
    p = sub.add_parser(
        "assist",
        help="diagnostic assistant: a ranked differential from symptoms or free text",
        description="A ranked differential with probabilities, evidence for and against, and "
        "the next questions worth asking. Research use only.\n\nDatasets (--dataset):\n"
        f"{listing}\n\nDefault: {DEFAULT_DATASET} (the broadest knowledge base: 49 "
        f"conditions, adults and children, English) unless the text is Chinese, then "
        f"{DEFAULT_DATASET_ZH} (adult general medicine, 12 diseases). The MZ and Dxy sets are "
        "paediatric. DDXPlus probabilities assume every condition is equally common.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--dataset",
        help=f"vocabulary and model: {names} (default: {DEFAULT_DATASET}, or "
        f"{DEFAULT_DATASET_ZH} for Chinese text)",
    )
    p.add_argument(
        "--symptom",
        action="append",
        metavar="CODE=VALUE",
        help="a symptom (code or English name) with yes / no / unsure; repeat",
    )
    p.add_argument("--text", help="free text in Chinese or English (negation understood)")
    p.add_argument("--age", type=int, help="age in years (recorded; not used by the models)")
    p.add_argument("--sex", help="F or M (recorded; not used by the models)")
    p.add_argument("--top", type=int, default=5, help="diseases to show (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--interactive", action="store_true", help="ask the next question until confident"
    )
    p.set_defaults(func=_wrap(cmd_opinion))
    asub = p.add_subparsers(dest="assist_command", required=False)
    ev = asub.add_parser("evaluate", help="the benchmark table on the official test split")
    ev.add_argument("--dataset", required=True, help=f"{names} or all")
    ev.add_argument("--split", default="test", choices=["test", "val"])
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--out", help="also write the results as JSON to this file")
    ev.set_defaults(func=_wrap(cmd_evaluate))
    tr = asub.add_parser("train", help="choose and train the models (needs the train extra)")
    tr.add_argument("--dataset", required=True, help=f"{names} or all")
    tr.add_argument("--out", help="folder (default models/assist)")
    tr.set_defaults(func=_wrap(cmd_train))
    ca = asub.add_parser(
        "cards",
        help="re-render model cards and eval JSON with the current published numbers "
        "(no training, no re-evaluation)",
    )
    ca.add_argument("--dataset", required=True, help=f"{names} or all")
    ca.add_argument("--dir", help="model folder (default models/assist)")
    ca.set_defaults(func=_wrap(cmd_cards))
    ds = asub.add_parser("datasets", help="the datasets: names, populations, languages")
    ds.add_argument("--json", action="store_true")
    ds.set_defaults(func=_wrap(cmd_datasets))
    sy = asub.add_parser("symptoms", help="list a dataset's symptom vocabulary")
    sy.add_argument("--dataset", required=True, help=names)
    sy.add_argument("--json", action="store_true")
    sy.set_defaults(func=_wrap(cmd_symptoms))
