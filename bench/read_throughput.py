"""Read throughput: images/s and per-stage milliseconds of `dxassist read`'s path.

Inputs: the real PA chest CR shipped in pydicom-data (RG1_UNCR.dcm, 1841x1955, 15-bit,
MONOCHROME1), read repeatedly, and 200 images sampled (fixed seed) from the test split of
shared/data/cxr/manifest.csv. Each image goes one at a time through decode (dxassist
.imaging), preprocess, ONNX Runtime inference and heatmap overlay written to PNG, as the
CLI does. In the same run, a randomly initialised DenseNet-121 (torchxrayvision's
architecture, 1 x 224 x 224 input, 18 outputs) is exported to ONNX and timed on the same
decoded, preprocessed inputs (speed only: no weights can be downloaded here).

    python bench/read_throughput.py [--manifest PATH] [--n 200] [--repeat-cr 20]

Writes bench/results/read_throughput.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from dxassist.cxr.heatmap import write_overlay  # noqa: E402
from dxassist.cxr.manifest import read_manifest  # noqa: E402
from dxassist.cxr.preprocess import preprocess  # noqa: E402
from dxassist.cxr.runtime import CxrModel  # noqa: E402
from dxassist.imaging import load_file  # noqa: E402


def default_manifest() -> Path:
    shared = os.environ.get("DXASSIST_SHARED_DATA")
    base = Path(shared) if shared else REPO.parent / "shared" / "data"
    return base / "cxr" / "manifest.csv"


def densenet_session(tmp: Path) -> Any:
    import onnxruntime as ort
    import torch

    from densenet121 import DenseNet121

    torch.manual_seed(0)
    net = DenseNet121().eval()
    path = tmp / "densenet121.onnx"
    torch.onnx.export(
        net,
        (torch.zeros(1, 1, 224, 224),),
        str(path),
        input_names=["image"],
        output_names=["out"],
        opset_version=17,
        dynamo=False,
    )
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run(files: list[Path], model: CxrModel, dense: Any, tmp: Path) -> dict[str, Any]:
    stages: dict[str, list[float]] = {
        k: [] for k in ("decode", "preprocess", "infer", "heatmap", "total", "densenet_infer")
    }
    for i, f in enumerate(files):
        t0 = time.perf_counter()
        rg = load_file(f)
        t1 = time.perf_counter()
        x = preprocess(rg.pixels, model.info.input_size)[np.newaxis]
        t2 = time.perf_counter()
        _, cams = model.infer(x)
        t3 = time.perf_counter()
        write_overlay(tmp / f"h{i % 8}.png", rg.pixels, cams[0, 1])
        t4 = time.perf_counter()
        dense.run(None, {"image": x})
        t5 = time.perf_counter()
        for k, v in zip(
            ("decode", "preprocess", "infer", "heatmap", "total", "densenet_infer"),
            (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0, t5 - t4),
            strict=True,
        ):
            stages[k].append(v * 1e3)
    out: dict[str, Any] = {"images": len(files)}
    for k, v in stages.items():
        out[k] = {"mean_ms": statistics.fmean(v), "median_ms": statistics.median(v)}
    ours = sum(stages["total"]) / 1e3
    theirs = (
        sum(stages["decode"]) + sum(stages["preprocess"]) + sum(stages["densenet_infer"])
    ) / 1e3
    ours_no_heatmap = (sum(stages["total"]) - sum(stages["heatmap"])) / 1e3
    out["images_per_s"] = len(files) / ours
    out["images_per_s_without_heatmap"] = len(files) / ours_no_heatmap
    out["densenet_images_per_s"] = len(files) / theirs
    out["infer_ratio_densenet_over_ours"] = (
        out["densenet_infer"]["mean_ms"] / out["infer"]["mean_ms"]
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", type=Path, default=default_manifest())
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--repeat-cr", type=int, default=20)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "read_throughput.json")
    args = ap.parse_args()

    from pydicom.data import get_testdata_file

    cr = Path(str(get_testdata_file("RG1_UNCR.dcm")))
    rows = [r for r in read_manifest(args.manifest) if r.split == "test"]
    sample = random.Random(0).sample(rows, min(args.n, len(rows)))
    model = CxrModel.load()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        dense = densenet_session(tmp)
        # warm-up: first runs allocate arenas
        run([cr, sample[0].path], model, dense, tmp)
        results = {
            "real CR DICOM (RG1_UNCR.dcm)": run([cr] * args.repeat_cr, model, dense, tmp),
            f"{len(sample)} manifest test images": run([r.path for r in sample], model, dense, tmp),
        }
    env = {
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "model": f"{model.info.name} {model.info.version}",
    }
    header = (
        "| input | images | decode ms | preprocess ms | infer ms | heatmap ms | total ms | "
        "images/s | DenseNet-121 infer ms | DenseNet-121 images/s (no heatmap) | "
        "infer ratio |"
    )
    lines = [header, "|" + "---|" * 11]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['images']} | {r['decode']['mean_ms']:.1f} | "
            f"{r['preprocess']['mean_ms']:.1f} | {r['infer']['mean_ms']:.1f} | "
            f"{r['heatmap']['mean_ms']:.1f} | {r['total']['mean_ms']:.1f} | "
            f"{r['images_per_s']:.1f} | {r['densenet_infer']['mean_ms']:.1f} | "
            f"{r['densenet_images_per_s']:.1f} | "
            f"{r['infer_ratio_densenet_over_ours']:.1f}x |"
        )
    table = "\n".join(lines)
    print(table)
    print(f"\n(mean per image; {env})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"env": env, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
