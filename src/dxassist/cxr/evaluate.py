"""Evaluate a chest X-ray model on a manifest split, per data source and pooled.

Metrics: one-vs-rest AUC per finding, abnormal (any pneumonia) vs normal AUC, macro-AUC,
accuracy, sensitivity/specificity for "abnormal" at the model's priority and urgent
thresholds, expected calibration error. 95 % confidence intervals by bootstrap resampling
of *patients* (all images of a resampled patient move together).

Rows labelled "pneumonia" (type unrecorded, NIH) count as abnormal and are left out of
per-type metrics.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dxassist.cxr.manifest import ManifestRow, read_manifest
from dxassist.cxr.metrics import reliability_bins, roc_auc, roc_curve
from dxassist.cxr.preprocess import preprocess
from dxassist.cxr.runtime import CxrModel
from dxassist.cxr.taxonomy import FINDINGS
from dxassist.errors import InputError
from dxassist.imaging import load_file

Metric = Callable[[npt.NDArray[np.int64], npt.NDArray[np.float64]], float]


@dataclass
class Predictions:
    rows: list[ManifestRow]
    probabilities: npt.NDArray[np.float64]  # (N, 4)

    @property
    def targets(self) -> npt.NDArray[np.int64]:
        return np.array([r.target for r in self.rows], dtype=np.int64)


def predict_rows(
    model: CxrModel, rows: list[ManifestRow], batch: int = 32, progress: bool = True
) -> Predictions:
    probs = np.zeros((len(rows), len(FINDINGS)), dtype=np.float64)
    iterator: Any = range(0, len(rows), batch)
    if progress:
        try:
            from tqdm import tqdm
        except ImportError:  # progress bars come with the train extra; not needed here
            pass
        else:
            iterator = tqdm(iterator, desc="predict", unit="batch")
    for start in iterator:
        chunk = rows[start : start + batch]
        x = np.stack([preprocess(load_file(r.path).pixels, model.info.input_size) for r in chunk])
        p, _ = model.infer(x.astype(np.float32))
        probs[start : start + len(chunk)] = p
    return Predictions(rows, probs)


def ece(
    correct: npt.NDArray[np.bool_], confidence: npt.NDArray[np.float64], bins: int = 10
) -> float:
    """Expected calibration error of the top-class confidence (equal-width bins)."""
    if len(confidence) == 0:
        return float("nan")
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(correct[m].mean() - confidence[m].mean())
    return float(total)


def _metrics() -> dict[str, Metric]:
    def abnormal_auc(t: npt.NDArray[np.int64], p: npt.NDArray[np.float64]) -> float:
        return roc_auc(t != 0, 1.0 - p[:, 0])

    def ovr(k: int) -> Metric:
        def f(t: npt.NDArray[np.int64], p: npt.NDArray[np.float64]) -> float:
            typed = t >= 0
            return roc_auc(t[typed] == k, p[typed, k])

        return f

    def macro(t: npt.NDArray[np.int64], p: npt.NDArray[np.float64]) -> float:
        vals = [ovr(k)(t, p) for k in range(len(FINDINGS))]
        vals = [v for v in vals if not np.isnan(v)]
        return float(np.mean(vals)) if vals else float("nan")

    def accuracy(t: npt.NDArray[np.int64], p: npt.NDArray[np.float64]) -> float:
        typed = t >= 0
        return float((p[typed].argmax(1) == t[typed]).mean()) if typed.any() else float("nan")

    def calib(t: npt.NDArray[np.int64], p: npt.NDArray[np.float64]) -> float:
        typed = t >= 0
        q = p[typed]
        return ece(q.argmax(1) == t[typed], q.max(1))

    def bacterial_vs_viral(t: npt.NDArray[np.int64], p: npt.NDArray[np.float64]) -> float:
        # among films labelled bacterial or viral (non-COVID) pneumonia, as in Kermany 2018
        m = (t == 1) | (t == 2)
        share = p[m, 1] / np.maximum(p[m, 1] + p[m, 2], 1e-12)
        return roc_auc(t[m] == 1, share)

    out: dict[str, Metric] = {
        "auc_abnormal": abnormal_auc,
        "macro_auc": macro,
        "auc_bacterial_vs_viral": bacterial_vs_viral,
    }
    for k, name in enumerate(FINDINGS):
        out[f"auc_{name}"] = ovr(k)
    out["accuracy"] = accuracy
    out["ece"] = calib
    return out


def _operating_point(threshold: float) -> dict[str, Metric]:
    def sens(t: npt.NDArray[np.int64], p: npt.NDArray[np.float64]) -> float:
        pos = t != 0
        return float(((1.0 - p[pos, 0]) >= threshold).mean()) if pos.any() else float("nan")

    def spec(t: npt.NDArray[np.int64], p: npt.NDArray[np.float64]) -> float:
        neg = t == 0
        return float(((1.0 - p[neg, 0]) < threshold).mean()) if neg.any() else float("nan")

    def abnormal_accuracy(t: npt.NDArray[np.int64], p: npt.NDArray[np.float64]) -> float:
        return float((((1.0 - p[:, 0]) >= threshold) == (t != 0)).mean())

    return {"sensitivity": sens, "specificity": spec, "abnormal_accuracy": abnormal_accuracy}


def bootstrap(
    rows: list[ManifestRow],
    targets: npt.NDArray[np.int64],
    probs: npt.NDArray[np.float64],
    metrics: dict[str, Metric],
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Point estimate and 95 % percentile CI of each metric, resampling patients."""
    patients = sorted({r.patient_id for r in rows})
    index = {p: i for i, p in enumerate(patients)}
    groups: list[list[int]] = [[] for _ in patients]
    for i, r in enumerate(rows):
        groups[index[r.patient_id]].append(i)
    group_arrays = [np.array(g) for g in groups]
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {k: [] for k in metrics}
    for _ in range(n_boot):
        pick = rng.integers(0, len(groups), len(groups))
        idx = np.concatenate([group_arrays[j] for j in pick])
        for k, f in metrics.items():
            samples[k].append(f(targets[idx], probs[idx]))
    out: dict[str, dict[str, float]] = {}
    for k, f in metrics.items():
        vals = np.array([v for v in samples[k] if not np.isnan(v)])
        point = f(targets, probs)
        lo, hi = np.percentile(vals, [2.5, 97.5]) if len(vals) else (np.nan, np.nan)
        out[k] = {"value": float(point), "ci_low": float(lo), "ci_high": float(hi)}
    return out


def evaluate(
    model: CxrModel,
    manifest: Path,
    image_root: Path | None = None,
    split: str = "test",
    n_boot: int = 1000,
) -> dict[str, Any]:
    rows = [r for r in read_manifest(manifest, image_root) if r.split == split]
    if not rows:
        raise InputError(
            f"{manifest} has no usable rows in split {split!r}; check the split column "
            "(train / val / test) or pass --split"
        )
    preds = predict_rows(model, rows)
    metrics = _metrics()
    for name, thr in (
        ("priority", model.info.thresholds.priority),
        ("urgent", model.info.thresholds.urgent),
    ):
        for k, f in _operating_point(thr).items():
            metrics[f"{k}_at_{name}"] = f
    targets = preds.targets
    report: dict[str, Any] = {
        "model": {"name": model.info.name, "version": model.info.version},
        "split": split,
        "n_boot": n_boot,
        "by_dataset": {},
    }
    datasets = sorted({r.dataset for r in rows})
    for ds in [*datasets, "pooled"]:
        sel = np.array([ds == "pooled" or r.dataset == ds for r in rows])
        sub_rows = [r for r, s in zip(rows, sel, strict=True) if s]
        counts = {
            lbl: sum(r.label == lbl for r in sub_rows)
            for lbl in sorted({r.label for r in sub_rows})
        }
        t, p = targets[sel], preds.probabilities[sel]
        report["by_dataset"][ds] = {
            "images": len(sub_rows),
            "patients": len({r.patient_id for r in sub_rows}),
            "labels": counts,
            "metrics": bootstrap(sub_rows, t, p, metrics, n_boot),
            "confusion": confusion(sub_rows, p),
            "curves": curves(t, p),
        }
    report["predictions"] = [
        {
            "path": str(r.path),
            "dataset": r.dataset,
            "patient_id": r.patient_id,
            "label": r.label,
            **{k: float(v) for k, v in zip(FINDINGS, prob, strict=True)},
        }
        for r, prob in zip(rows, preds.probabilities, strict=True)
    ]
    return report


def confusion(rows: list[ManifestRow], probs: npt.NDArray[np.float64]) -> dict[str, list[int]]:
    """True label → counts of argmax findings (in FINDINGS order)."""
    out: dict[str, list[int]] = {}
    for label in [*FINDINGS, "pneumonia"]:
        m = np.array([r.label == label for r in rows], dtype=bool)
        if m.any():
            out[label] = np.bincount(probs[m].argmax(1), minlength=len(FINDINGS)).tolist()
    return out


def curves(t: npt.NDArray[np.int64], p: npt.NDArray[np.float64]) -> dict[str, Any]:
    """ROC curves (abnormal and one-vs-rest per finding) and reliability bins."""
    out: dict[str, Any] = {"roc": {}}
    if 0 < (t != 0).sum() < len(t):
        fpr, tpr = roc_curve(t != 0, 1.0 - p[:, 0])
        out["roc"]["abnormal"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
    typed = t >= 0
    for k, name in enumerate(FINDINGS):
        y = t[typed] == k
        if 0 < y.sum() < len(y):
            fpr, tpr = roc_curve(y, p[typed, k])
            out["roc"][name] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
    q = p[typed]
    out["reliability"] = reliability_bins(q.argmax(1) == t[typed], q.max(1))
    return out


def format_table(report: dict[str, Any]) -> str:
    cols = [
        "auc_abnormal",
        "macro_auc",
        "accuracy",
        "sensitivity_at_priority",
        "specificity_at_priority",
        "ece",
    ]
    lines = [
        "| dataset | images | " + " | ".join(cols) + " |",
        "|---|---|" + "---|" * len(cols),
    ]
    for ds, block in report["by_dataset"].items():
        cells = []
        for c in cols:
            m = block["metrics"][c]
            cells.append(
                "n/a"
                if np.isnan(m["value"])
                else f"{m['value']:.3f} ({m['ci_low']:.3f}–{m['ci_high']:.3f})"
            )
        lines.append(f"| {ds} | {block['images']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


PUBLISHED_KERMANY = {
    "auc_abnormal": 0.968,
    "auc_bacterial_vs_viral": 0.940,
    "abnormal_accuracy_at_priority": 0.928,
    "sensitivity_at_priority": 0.932,
    "specificity_at_priority": 0.901,
}


def _cell(m: dict[str, float]) -> str:
    if np.isnan(m["value"]):
        return "n/a"
    return f"{m['value']:.3f} ({m['ci_low']:.3f}–{m['ci_high']:.3f})"


def format_summary(report: dict[str, Any]) -> str:
    """The markdown summary: metrics table, Kermany anchor, confusion matrices."""
    lines = [
        f"# Evaluation of {report['model']['name']} {report['model']['version']} "
        f"on the {report['split']} split",
        "",
        f"95 % CIs: {report['n_boot']} bootstrap resamples of patients.",
        "",
        format_table(report),
        "",
    ]
    kermany = report["by_dataset"].get("kermany")
    if kermany is not None:
        lines += [
            "## Kermany anchor (Kermany et al., Cell 2018)",
            "",
            "| metric | this model | Kermany 2018 |",
            "|---|---|---|",
        ]
        for key, published in PUBLISHED_KERMANY.items():
            lines.append(f"| {key} | {_cell(kermany['metrics'][key])} | {published:.3f} |")
        lines.append("")
    lines += ["## Confusion (rows: truth; columns: argmax " + " / ".join(FINDINGS) + ")", ""]
    for ds, block in report["by_dataset"].items():
        lines.append(
            f"- {ds}: "
            + "; ".join(
                f"{label} {' / '.join(str(c) for c in counts)}"
                for label, counts in block["confusion"].items()
            )
        )
    return "\n".join(lines) + "\n"


def write_plots(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """ROC curves and reliability diagrams as PNG (matplotlib, from the train extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    blocks = report["by_dataset"]

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for ds, block in blocks.items():
        roc = block["curves"]["roc"].get("abnormal")
        if roc:
            auc = block["metrics"]["auc_abnormal"]["value"]
            ax.plot(roc["fpr"], roc["tpr"], label=f"{ds} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="1 − specificity", ylabel="sensitivity", title="Abnormal vs normal: ROC")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    written.append(out_dir / "roc_abnormal.png")
    fig.savefig(written[-1], dpi=120, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, roc in blocks["pooled"]["curves"]["roc"].items():
        if name == "abnormal":
            continue
        auc = blocks["pooled"]["metrics"][f"auc_{name}"]["value"]
        ax.plot(roc["fpr"], roc["tpr"], label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="1 − specificity", ylabel="sensitivity", title="Pooled one-vs-rest ROC")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    written.append(out_dir / "roc_findings.png")
    fig.savefig(written[-1], dpi=120, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for ds, block in blocks.items():
        bins = [b for b in block["curves"]["reliability"] if b["count"] >= 5]
        if bins:
            ece_value = block["metrics"]["ece"]["value"]
            ax.plot(
                [b["confidence"] for b in bins],
                [b["accuracy"] for b in bins],
                "o-",
                label=f"{ds} (ECE {ece_value:.3f})",
            )
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(
        xlabel="mean top-class probability",
        ylabel="observed accuracy",
        title="Reliability (bins with ≥ 5 films)",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=8)
    written.append(out_dir / "reliability.png")
    fig.savefig(written[-1], dpi=120, bbox_inches="tight")
    plt.close(fig)
    return written


def _json_safe(value: Any) -> Any:
    """NaN/inf (an undefined metric, e.g. AUC with one class) as null: strict JSON."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def write_report(report: dict[str, Any], out_dir: Path) -> str | None:
    """report.json, summary.md, predictions.csv and PNG plots in out_dir.

    Returns a note when the plots had to be skipped (matplotlib not installed).
    """
    import csv

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(
        json.dumps(_json_safe(report), indent=2, allow_nan=False) + "\n"
    )
    (out_dir / "summary.md").write_text(format_summary(report))
    with (out_dir / "predictions.csv").open("w", newline="") as handle:
        fields = ["path", "dataset", "patient_id", "label", *FINDINGS]
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(report["predictions"])
    try:
        write_plots(report, out_dir)
    except ImportError:
        return "plots skipped: matplotlib is not installed (pip install -e '.[train]')"
    return None
