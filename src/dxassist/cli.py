"""The ``dxassist`` command.

Exit codes: 0 every file read; 2 bad command line; 3 at least one input could not be read
(the others are still read and reported); 4 the model could not be loaded; 1 an internal
error (a bug: please report it with the file that caused it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from dxassist import __version__
from dxassist.cxr.taxonomy import DISPLAY_NAMES, FINDINGS
from dxassist.errors import DxAssistError, InputError, ModelError

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_INPUT, EXIT_MODEL = 0, 1, 2, 3, 4
DEFAULT_HEATMAP_DIR = Path("dxassist-heatmaps")
DISCLAIMER = (
    "Research use only: not a medical device. Every read must be confirmed by a radiologist."
)


def _err(message: str) -> None:
    print(f"dxassist: {message}", file=sys.stderr, flush=True)


def _format_human(result: object) -> str:
    from dxassist.pipeline import ReadResult

    assert isinstance(result, ReadResult)
    r, meta = result.reading, result.radiograph.meta
    rows, cols = result.radiograph.pixels.shape
    desc = ", ".join(
        x
        for x in (
            meta.modality,
            meta.view_position,
            f"{cols}x{rows}",
            meta.photometric,
        )
        if x
    )
    bars = []
    for name in FINDINGS:
        p = r.probabilities[name]
        bars.append(f"    {DISPLAY_NAMES[name]:<32} {p:6.1%}  {'#' * round(p * 30)}")
    lines = [
        f"{result.file}  ({desc})",
        f"  top finding     {DISPLAY_NAMES[r.top_finding]} ({r.probabilities[r.top_finding]:.1%})",
        "  probabilities",
        *bars,
        f"  abnormal score  {r.abnormal:.3f}  (1 - p(normal))",
        f"  priority        {str(r.priority).upper()}  (thresholds: priority >= "
        f"{result.model.thresholds.priority:.3f}, urgent >= {result.model.thresholds.urgent:.3f})",
    ]
    if result.heatmap is not None:
        lines.append(
            f"  heatmap         {result.heatmap}  (evidence for: "
            f"{DISPLAY_NAMES[r.heatmap_finding]})"
        )
    if result.warnings:
        lines.append("  warnings")
        lines.extend(f"    ! {w}" for w in result.warnings)
    else:
        lines.append("  warnings        none")
    lines.append(f"  model           {result.model.name} {result.model.version}")
    return "\n".join(lines)


def cmd_read(args: argparse.Namespace) -> int:
    from dxassist.cxr.runtime import CxrModel
    from dxassist.pipeline import heatmap_path, read_file

    try:
        model = CxrModel.load(args.model)
    except ModelError as exc:
        _err(str(exc))
        return EXIT_MODEL
    heatmap_dir: Path | None = None if args.no_heatmap else Path(args.heatmap_dir)
    taken: set[Path] = set()
    status = EXIT_OK
    for i, name in enumerate(args.files):
        path = Path(name)
        try:
            target = heatmap_path(heatmap_dir, path, taken) if heatmap_dir else None
            result = read_file(path, model, target)
        except InputError as exc:
            status = EXIT_INPUT
            message = str(exc)
            # one line that starts with the file name, whether or not the reason names it
            for prefix in (f"{name}: ", f"{path}: "):
                message = message.removeprefix(prefix)
            _err(f"{name}: {message}")
            if args.json:
                print(json.dumps({"file": name, "error": message}, ensure_ascii=False))
            continue
        except DxAssistError as exc:
            _err(f"{name}: {exc}")
            return exc.exit_code
        except OSError as exc:  # e.g. heatmap folder not writable
            _err(f"{name}: {exc.strerror or exc} ({exc.filename or ''}); check the path")
            status = EXIT_INPUT
            continue
        if args.json:
            print(json.dumps(result.to_json(), ensure_ascii=False), flush=True)
        else:
            if i:
                print()
            print(_format_human(result), flush=True)
    if not args.json:
        print(f"\n{DISCLAIMER}")
    return status


def cmd_demo(args: argparse.Namespace) -> int:
    """Read the real PA chest CR that ships in the PyPI package pydicom-data."""
    try:
        from pydicom.data import get_testdata_file

        sample = get_testdata_file("RG1_UNCR.dcm")
    except Exception:  # pydicom-data not installed or its file missing
        sample = None
    if not sample:
        _err(
            "the demo radiograph RG1_UNCR.dcm comes from the PyPI package pydicom-data; "
            "install it with: pip install pydicom-data"
        )
        return EXIT_INPUT
    print(f"Reading the real PA chest CR shipped in pydicom-data: {sample}\n")
    args.files = [str(sample)]
    return cmd_read(args)


def cmd_train(args: argparse.Namespace) -> int:
    try:
        from dxassist.cxr.train import TrainConfig, train
    except ImportError as exc:
        _err(
            f"training needs PyTorch ({exc.name} is missing): pip install torch==2.13.0 "
            "&& pip install -e '.[train]'"
        )
        return EXIT_INPUT
    manifest = Path(args.manifest)
    if not manifest.is_file():
        _err(f"manifest {manifest} not found")
        return EXIT_INPUT
    cfg = TrainConfig(
        manifest=manifest,
        image_root=Path(args.image_root) if args.image_root else manifest.parent,
        out_dir=Path(args.out),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        max_minutes=args.max_minutes,
        patience=args.patience,
        limit_per_split=args.limit,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        resume=args.resume,
        seed=args.seed,
    )
    meta = train(cfg)
    print(json.dumps({k: v for k, v in meta.items() if k != "training"}, indent=2))
    print(f"model written to {cfg.out_dir}")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from dxassist.cxr.evaluate import evaluate, format_table, write_report
    from dxassist.cxr.runtime import CxrModel

    manifest = Path(args.manifest)
    if not manifest.is_file():
        _err(f"manifest {manifest} not found")
        return EXIT_INPUT
    model = CxrModel.load(args.model)
    report = evaluate(
        model,
        manifest,
        Path(args.image_root) if args.image_root else None,
        split=args.split,
        n_boot=args.n_boot,
    )
    write_report(report, Path(args.out))
    print(format_table(report))
    print(f"\nreport written to {args.out}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dxassist",
        description="AI second opinions for chest radiographs. " + DISCLAIMER,
    )
    parser.add_argument("--version", action="version", version=f"dxassist {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def add_read_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="one JSON object per line per file")
        p.add_argument(
            "--heatmap-dir",
            default=str(DEFAULT_HEATMAP_DIR),
            help="folder for heatmap PNGs (default: ./dxassist-heatmaps)",
        )
        p.add_argument("--no-heatmap", action="store_true", help="do not write heatmaps")
        p.add_argument(
            "--model",
            default=None,
            help="model name in models/ or path to an .onnx file (its .json beside it)",
        )

    read = sub.add_parser(
        "read", help="read chest radiographs (DICOM, PNG, JPEG) and print the AI's findings"
    )
    read.add_argument("files", nargs="+", metavar="FILE")
    add_read_options(read)
    read.set_defaults(func=cmd_read)

    demo = sub.add_parser("demo", help="read the real chest CR shipped in pydicom-data")
    add_read_options(demo)
    demo.set_defaults(func=cmd_demo)

    tr = sub.add_parser("train", help="train the chest X-ray model (needs the train extra)")
    tr.add_argument("--manifest", required=True, help="CSV like shared/data/cxr/manifest.csv")
    tr.add_argument("--image-root", help="folder the manifest paths are relative to")
    tr.add_argument("--out", required=True, help="output folder (ONNX, JSON, checkpoints)")
    tr.add_argument("--epochs", type=int, default=6)
    tr.add_argument("--batch-size", type=int, default=32)
    tr.add_argument("--lr", type=float, default=1e-3)
    tr.add_argument("--max-minutes", type=float, default=100.0)
    tr.add_argument("--patience", type=int, default=3)
    tr.add_argument("--limit", type=int, help="use at most N images per split (smoke tests)")
    tr.add_argument("--cache-dir", help="cache preprocessed images here")
    tr.add_argument("--resume", action="store_true", help="continue from out/checkpoint.pt")
    tr.add_argument("--seed", type=int, default=20261203)
    tr.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="evaluate a model on a manifest split, with 95% CIs")
    ev.add_argument("--manifest", required=True)
    ev.add_argument("--image-root")
    ev.add_argument("--split", default="test")
    ev.add_argument("--model", default=None)
    ev.add_argument("--out", default="dxassist-eval")
    ev.add_argument("--n-boot", type=int, default=1000)
    ev.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except DxAssistError as exc:
        _err(str(exc))
        return exc.exit_code
    except Exception as exc:
        _err(
            f"internal error: {type(exc).__name__}: {exc}. This is a bug in dxassist; "
            "please report it together with the command and input that caused it."
        )
        return EXIT_INTERNAL
    return code


if __name__ == "__main__":
    sys.exit(main())
