"""``dxassist prognosis``: predict (labs or CSV), train, evaluate.

Exit codes as for the rest of dxassist: 0 done; 2 bad command line; 3 at least one
patient's labs could not be used (the others are still scored and printed); 4 the model
could not be loaded; 5 the train extra is missing (train, evaluate plots).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from dxassist.errors import InputError, ModelError

EXIT_OK, EXIT_USAGE, EXIT_INPUT, EXIT_MODEL, EXIT_DEPENDENCY = 0, 2, 3, 4, 5
DISCLAIMER = (
    "Research use only: not a medical device. The risk supports, never replaces, the "
    "clinical judgement of the treating team."
)
#: most rows one --csv file may have
MAX_CSV_ROWS = 100_000


def _err(message: str) -> None:
    print(f"dxassist: {message}", file=sys.stderr, flush=True)


def _print_json(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, ensure_ascii=False, allow_nan=False), flush=True)


def _parse_lab_args(pairs: list[str]) -> dict[str, str]:
    labs: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(
                f"--lab {pair!r}: write NAME=VALUE, e.g. --lab LDH=412 --lab hsCRP=56 "
                "--lab lymphocyte_pct=9.5"
            )
        if name.strip() in labs:
            raise ValueError(f"--lab {name.strip()} given twice; give each lab once")
        labs[name.strip()] = value
    return labs


def _read_csv(path: Path) -> list[tuple[int, str | None, dict[str, str]]]:
    """(line number, id, labs) for every row; InputError for an unusable file."""
    from dxassist.prognosis.features import canonical_key

    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a CSV file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: is not UTF-8 text; save the sheet as CSV (UTF-8)") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise InputError(f"{path}: empty file; the first line must name the columns")
    for h in header:
        if h.lower() != "id":
            try:
                canonical_key(h)
            except InputError as exc:
                raise InputError(f"{path}: column {h!r}: {exc}") from None
    if len(set(header)) != len(header):
        raise InputError(f"{path}: a column name appears twice in the header")
    rows: list[tuple[int, str | None, dict[str, str]]] = []
    for n, row in enumerate(reader, start=2):
        if len(rows) >= MAX_CSV_ROWS:
            raise InputError(f"{path}: more than {MAX_CSV_ROWS} rows; split the file")
        if None in row:
            raise InputError(f"{path}: line {n} has more cells than the header has columns")
        clean = {k.strip(): (v or "") for k, v in row.items()}
        ident = next((v.strip() for k, v in clean.items() if k.lower() == "id"), None)
        labs = {k: v for k, v in clean.items() if k.lower() != "id"}
        rows.append((n, ident or None, labs))
    if not rows:
        raise InputError(f"{path}: no patient rows under the header")
    return rows


def _format_human(result: Any, model: Any) -> str:
    b = model.bands
    lines = [
        f"patient {result.id}" if result.id is not None else "patient",
        f"  risk of death   {result.risk:6.1%}   band {result.band.upper()}  "
        f"(low < {b.intermediate:g} <= intermediate < {b.high:g} <= high)",
        "  reasons",
        *(f"    - {r}" for r in result.reasons),
    ]
    if result.warnings:
        lines.append("  warnings")
        lines.extend(f"    ! {w}" for w in result.warnings)
    else:
        lines.append("  warnings        none")
    lines.append(f"  model           {model.name} {model.version}")
    return "\n".join(lines)


def cmd_predict(args: argparse.Namespace) -> int:
    from dxassist.prognosis.runtime import PrognosisModel

    if not args.lab and not args.csv:
        _err(
            "give --lab KEY=VALUE (one or more, e.g. --lab LDH=412 --lab hsCRP=56 --lab "
            "lymphocyte_pct=9.5) or --csv FILE"
        )
        return EXIT_USAGE
    if args.lab and args.csv:
        _err("give the labs with --lab KEY=VALUE (one patient) or --csv FILE, not both")
        return EXIT_USAGE
    patients: list[tuple[str, str | None, dict[str, str]]]
    if args.lab:
        try:
            labs = _parse_lab_args(args.lab)
        except ValueError as exc:
            _err(str(exc))
            return EXIT_USAGE
        patients = [("--lab", args.id, labs)]
    elif args.id is not None:
        _err("--id goes with --lab; in a CSV, give each patient's id in an 'id' column")
        return EXIT_USAGE
    else:
        try:
            rows = _read_csv(Path(args.csv))
        except InputError as exc:
            _err(str(exc))
            return EXIT_INPUT
        patients = [(f"{args.csv} line {n}", ident, labs) for n, ident, labs in rows]
    try:
        model = PrognosisModel.load(args.model)
    except ModelError as exc:
        _err(str(exc))
        return EXIT_MODEL
    status = EXIT_OK
    shown = 0
    for where, ident, labs in patients:
        try:
            result = model.predict(labs, id=ident)
        except InputError as exc:
            status = EXIT_INPUT
            who = f" (id {ident})" if ident is not None else ""
            _err(f"{where}{who}: {exc}")
            if args.json:
                _print_json({"id": ident, "error": str(exc)})
            continue
        if args.json:
            _print_json(result.to_json())
        else:
            if shown:
                print()
            print(_format_human(result, model), flush=True)
        shown += 1
    if shown and not args.json:
        print(f"\n{DISCLAIMER}")
    return status


def cmd_train(args: argparse.Namespace) -> int:
    try:
        import sklearn  # noqa: F401

        from dxassist.prognosis.train import TrainConfig, train
    except ImportError as exc:
        _err(f"training needs the train extra ({exc.name} is missing): pip install -e '.[train]'")
        return EXIT_DEPENDENCY
    from dxassist.prognosis.features import default_data_dir

    data = Path(args.data) if args.data else default_data_dir()
    cfg = TrainConfig(
        data_dir=data, out=Path(args.out), model_version=args.model_version, seed=args.seed
    )
    try:
        meta = train(cfg)
    except InputError as exc:
        _err(str(exc))
        return EXIT_INPUT
    cv = meta["training"]["cv_results"]
    for kind, m in cv.items():
        print(
            f"{kind:<18} CV AUC {m['auc']['mean']:.3f}  Brier {m['brier']['mean']:.4f}  "
            f"log-loss {m['log_loss']['mean']:.4f}  ECE {m['calibration_error']['mean']:.3f}"
        )
    b = meta["bands"]
    print(
        f"chosen: {meta['kind']} (lowest CV Brier); threshold {b['threshold']}, bands "
        f"intermediate >= {b['intermediate']}, high >= {b['high']}"
    )
    print(f"model written to {cfg.out}")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from dxassist.prognosis.evaluate import evaluate, format_bands, format_table, write_report
    from dxassist.prognosis.features import default_data_dir
    from dxassist.prognosis.runtime import PrognosisModel

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        _err("the calibration plot needs matplotlib (the train extra): pip install -e '.[train]'")
        return EXIT_DEPENDENCY
    if args.n_boot < 100:
        _err("--n-boot must be at least 100 for a 95% interval")
        return EXIT_USAGE
    try:
        model = PrognosisModel.load(args.model)
    except ModelError as exc:
        _err(str(exc))
        return EXIT_MODEL
    data = Path(args.data) if args.data else default_data_dir()
    try:
        report = evaluate(model, data, n_boot=args.n_boot)
    except InputError as exc:
        _err(str(exc))
        return EXIT_INPUT
    write_report(report, Path(args.out))
    print(format_table(report))
    print()
    print(format_bands(report))
    print()
    print(goal_line(report))
    print(f"report written to {args.out}")
    return EXIT_OK


def goal_line(report: dict[str, Any]) -> str:
    """The issue's development target, worded as a target (not a validation verdict)."""
    goal = report["goal"]
    point = report.get("point", {})
    auc, ece = point.get("model_auc"), point.get("model_calibration_error")
    measured = (
        f" (AUC {auc:.3f}, ECE {ece:.3f})"
        if isinstance(auc, int | float) and isinstance(ece, int | float)
        else ""
    )
    return (
        f"issue goal AUC >= {goal['auc_at_least']} and ECE <= "
        f"{goal['calibration_error_at_most']}: {'reached' if goal['met'] else 'not reached'}"
        f"{measured}; see the model card"
    )


def register(sub: Any) -> None:
    """Add ``dxassist prognosis ...`` to the subparsers of cli.build_parser."""
    from dxassist.prognosis.features import LABS
    from dxassist.prognosis.train import SEED

    labs_help = ", ".join(f"{s.key} ({s.name}, {s.unit})" for s in LABS)
    pg = sub.add_parser(
        "prognosis",
        help="COVID-19 outcome risk from admission labs (LDH, hs-CRP, lymphocyte %%)",
        description="Risk of in-hospital death of a COVID-19 patient from the first labs "
        f"after admission. Labs: {labs_help}. " + DISCLAIMER,
    ).add_subparsers(dest="prognosis_command", required=True)

    pr = pg.add_parser(
        "predict",
        help="risk, band, reasons and warnings for one patient (--lab) or a CSV",
        description=f"Labs: {labs_help}. A CSV has one patient per row, a header with "
        "these names (any subset) and an optional 'id' column echoed back; an empty cell "
        "is a missing lab.",
    )
    pr.add_argument(
        "--lab",
        action="append",
        metavar="NAME=VALUE",
        help="one lab value, e.g. --lab LDH=412 --lab hsCRP=56 --lab lymphocyte_pct=9.5",
    )
    pr.add_argument("--id", help="an id to echo back with --lab (e.g. a bed number)")
    pr.add_argument("--csv", metavar="FILE", help="CSV file, one patient per row")
    pr.add_argument("--json", action="store_true", help="one JSON object per patient per line")
    pr.add_argument("--model", help="model name in models/ or a .json path (default: shipped)")
    pr.set_defaults(func=cmd_predict)

    tr = pg.add_parser(
        "train", help="train on the 375 Tongji training patients (needs the train extra)"
    )
    tr.add_argument("--data", help="folder of the Tongji CSVs (default: shared data)")
    tr.add_argument("--out", default="dxassist-prognosis-3lab.json", help="model JSON to write")
    tr.add_argument(
        "--model-version",
        default="0.0.0-dev",
        help="version written into the model (default 0.0.0-dev, so a retrained model is "
        "never mistaken for a shipped one)",
    )
    tr.add_argument("--seed", type=int, default=SEED, help=f"CV and model seed (default {SEED})")
    tr.set_defaults(func=cmd_train)

    ev = pg.add_parser(
        "evaluate", help="evaluate on the external 110 beside Yan's rule (reproduces the card)"
    )
    ev.add_argument("--data", help="folder of the Tongji CSVs (default: shared data)")
    ev.add_argument("--model", help="model name in models/ or a .json path (default: shipped)")
    ev.add_argument(
        "--out",
        default="dxassist-prognosis-eval",
        help="report folder (default: dxassist-prognosis-eval)",
    )
    ev.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default 2000)")
    ev.set_defaults(func=cmd_evaluate)
