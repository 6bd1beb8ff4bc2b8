"""Evaluate the shipped model on the external 110 Tongji patients, beside Yan's rule.

The 110 are read only here. Every metric has a 95% CI from a bootstrap by patient
(each resample draws patients with replacement; the model and Yan's rule are scored on
the same resampled patients). The plot needs matplotlib (the ``train`` extra).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dxassist.cxr.metrics import roc_auc, roc_curve
from dxassist.prognosis.features import LAB_KEYS, TEST_FILE, TRAIN_FILE, load_cohort
from dxassist.prognosis.runtime import Bands, PrognosisModel
from dxassist.prognosis.yan import yan_rule

N_BOOT = 2000
BOOT_SEED = 20200528
CAL_BINS = 10
#: the issue's goal on the 110
GOAL_AUC, GOAL_CAL = 0.98, 0.05


def brier(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    yy, pp = np.asarray(y, np.float64), np.asarray(p, np.float64)
    return float(np.mean((pp - yy) ** 2))


def log_loss(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    yy = np.asarray(y, np.float64)
    pp = np.clip(np.asarray(p, np.float64), 1e-12, 1 - 1e-12)
    return float(-np.mean(yy * np.log(pp) + (1 - yy) * np.log(1 - pp)))


def calibration_error(y: npt.ArrayLike, p: npt.ArrayLike, bins: int = CAL_BINS) -> float:
    """Expected calibration error: over equal-width risk bins, the patient-weighted mean
    of |mean predicted risk - observed death rate|."""
    yy, pp = np.asarray(y, np.float64), np.asarray(p, np.float64)
    idx = np.clip(np.digitize(pp, np.linspace(0, 1, bins + 1)[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() * abs(pp[m].mean() - yy[m].mean())
    return float(total / len(pp))


def at_threshold(y: npt.ArrayLike, pred: npt.ArrayLike) -> dict[str, float]:
    yy, pp = np.asarray(y, bool), np.asarray(pred, bool)
    return {
        "accuracy": float((pp == yy).mean()),
        "sensitivity": float(pp[yy].mean()) if yy.any() else float("nan"),
        "specificity": float((~pp[~yy]).mean()) if (~yy).any() else float("nan"),
        "ppv": float(yy[pp].mean()) if pp.any() else float("nan"),
        "npv": float((~yy[~pp]).mean()) if (~pp).any() else float("nan"),
    }


def _metrics(
    y: npt.NDArray[np.int64],
    risk: npt.NDArray[np.float64],
    threshold: float,
    yan: npt.NDArray[np.int64],
) -> dict[str, float]:
    out: dict[str, float] = {
        "model_auc": roc_auc(y, risk),
        "model_brier": brier(y, risk),
        "model_calibration_error": calibration_error(y, risk),
        "model_mean_risk": float(risk.mean()),
        "observed_death_rate": float(y.mean()),
        "yan_auc": roc_auc(y, yan),
        "yan_brier": brier(y, yan),
    }
    out |= {f"model_{k}": v for k, v in at_threshold(y, risk >= threshold).items()}
    out |= {f"yan_{k}": v for k, v in at_threshold(y, yan == 1).items()}
    out["auc_difference"] = out["model_auc"] - out["yan_auc"]
    return out


def evaluate(
    model: PrognosisModel, data_dir: Path, n_boot: int = N_BOOT, seed: int = BOOT_SEED
) -> dict[str, Any]:
    """Score the 110 once; point estimates, bootstrap CIs, bands, Yan on the 375 too."""
    cohort = load_cohort(data_dir / TEST_FILE)
    patients = [p for p in cohort if p.n_labs > 0]
    y = np.array([p.outcome for p in patients], np.int64)
    rows = [{k: p.values[k] for k in LAB_KEYS} for p in patients]
    risk = model.risk_of(rows)
    yan = np.array([yan_rule(r) for r in rows], np.int64)
    t = model.bands.threshold
    point = _metrics(y, risk, t, yan)

    rng = np.random.default_rng(seed)
    boots: dict[str, list[float]] = {k: [] for k in point}
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        if y[i].min() == y[i].max():
            continue  # one class only: no AUC, sensitivity or specificity
        for k, v in _metrics(y[i], risk[i], t, yan[i]).items():
            boots[k].append(v)
    ci = {
        k: [float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))]
        for k, v in boots.items()
    }

    bands = {}
    for name in ("low", "intermediate", "high"):
        m = np.array([model.bands.band(float(r)) == name for r in risk], bool)
        bands[name] = {"patients": int(m.sum()), "deaths": int(y[m].sum())}

    train_cohort = [p for p in load_cohort(data_dir / TRAIN_FILE) if p.n_labs > 0]
    ty = np.array([p.outcome for p in train_cohort], np.int64)
    tyan = np.array([yan_rule(p.values) for p in train_cohort], np.int64)

    goal_met = point["model_auc"] >= GOAL_AUC and point["model_calibration_error"] <= GOAL_CAL
    return {
        "model": f"{model.name} {model.version}",
        "kind": model.kind,
        "data_file": TEST_FILE,
        "patients_in_file": len(cohort),
        "patients": len(patients),
        "deaths": int(y.sum()),
        "missing_per_lab": {k: sum(r[k] is None for r in rows) for k in LAB_KEYS},
        "threshold": t,
        "band_limits": {"intermediate": model.bands.intermediate, "high": model.bands.high},
        "n_boot": n_boot,
        "n_boot_used": len(boots["model_auc"]),
        "boot_seed": seed,
        "point": point,
        "ci95": ci,
        "bands": bands,
        "goal": {"auc_at_least": GOAL_AUC, "calibration_error_at_most": GOAL_CAL, "met": goal_met},
        "yan_on_375_admission": {
            "patients": len(ty),
            **at_threshold(ty, tyan == 1),
            "auc": roc_auc(ty, tyan),
        },
        "_ids": [p.patient_id for p in patients],
        "_y": y.tolist(),
        "_risk": risk.tolist(),
        "_yan": yan.tolist(),
    }


def _fmt(report: dict[str, Any], key: str, digits: int = 3) -> str:
    v, (lo, hi) = report["point"][key], report["ci95"][key]
    return f"{v:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def format_table(report: dict[str, Any]) -> str:
    """The side-by-side markdown table of the card (point estimate, 95% CI)."""
    r = report
    rows = [
        ("AUC", _fmt(r, "model_auc"), _fmt(r, "yan_auc") + " ¹"),
        (
            "Accuracy",
            _fmt(r, "model_accuracy"),
            _fmt(r, "yan_accuracy"),
        ),
        ("Sensitivity", _fmt(r, "model_sensitivity"), _fmt(r, "yan_sensitivity")),
        ("Specificity", _fmt(r, "model_specificity"), _fmt(r, "yan_specificity")),
        ("PPV", _fmt(r, "model_ppv"), _fmt(r, "yan_ppv")),
        ("NPV", _fmt(r, "model_npv"), _fmt(r, "yan_npv")),
        ("Brier score", _fmt(r, "model_brier"), _fmt(r, "yan_brier") + " ²"),
        ("Calibration error (ECE, 10 bins)", _fmt(r, "model_calibration_error"), "n/a ²"),
        ("Mean predicted risk", _fmt(r, "model_mean_risk"), "n/a"),
    ]
    head = (
        f"| on the external {r['patients']} ({r['deaths']} deaths) | {r['model']} "
        f"(threshold {r['threshold']:g}) | Yan et al. 2020 rule |"
    )
    lines = [head, "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines.append(
        f"| Observed death rate | {r['point']['observed_death_rate']:.3f} | "
        f"{r['point']['observed_death_rate']:.3f} |"
    )
    lines.append(f"| AUC difference (model − Yan) | {_fmt(r, 'auc_difference')} | |")
    return "\n".join(lines)


def format_bands(report: dict[str, Any]) -> str:
    """Patients and deaths per risk band on the 110 (a markdown table)."""
    lim = report["band_limits"]
    ranges = {
        "low": f"risk < {lim['intermediate']:g}",
        "intermediate": f"{lim['intermediate']:g} ≤ risk < {lim['high']:g}",
        "high": f"risk ≥ {lim['high']:g}",
    }
    lines = ["| band | risk | patients | deaths | death rate |", "|---|---|---|---|---|"]
    for name, b in report["bands"].items():
        rate = f"{b['deaths'] / b['patients']:.2f}" if b["patients"] else "–"
        lines.append(f"| {name} | {ranges[name]} | {b['patients']} | {b['deaths']} | {rate} |")
    return "\n".join(lines)


def write_report(report: dict[str, Any], out: Path) -> None:
    """report.json, table.md, predictions.csv (per patient) and calibration.png in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    public = {k: v for k, v in report.items() if not k.startswith("_")}
    (out / "report.json").write_text(json.dumps(public, indent=1) + "\n", encoding="utf-8")
    (out / "table.md").write_text(
        format_table(report) + "\n\n" + format_bands(report) + "\n", encoding="utf-8"
    )
    with (out / "predictions.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_id", "died", "risk", "band", "yan_rule_death"])
        lim = report["band_limits"]
        bands = Bands(lim["intermediate"], lim["high"], report["threshold"])
        for pid, died, risk, yan in zip(
            report["_ids"], report["_y"], report["_risk"], report["_yan"], strict=True
        ):
            writer.writerow([pid, died, f"{risk:.6f}", bands.band(risk), yan])
    plot(report, out / "calibration.png")


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = np.asarray(report["_y"], np.int64)
    risk = np.asarray(report["_risk"], np.float64)
    yan = np.asarray(report["_yan"], np.int64)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.6))
    edges = np.linspace(0, 1, CAL_BINS + 1)
    idx = np.clip(np.digitize(risk, edges[1:-1]), 0, CAL_BINS - 1)
    xs, ys, ns = [], [], []
    for b in range(CAL_BINS):
        m = idx == b
        if m.any():
            xs.append(risk[m].mean())
            ys.append(y[m].mean())
            ns.append(int(m.sum()))
    ax1.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfect calibration")
    ax1.plot(xs, ys, "o-", color="C0", label="dxassist model (10 risk bins)")
    for xv, yv, n in zip(xs, ys, ns, strict=True):
        ax1.annotate(str(n), (xv, yv), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax1.set_xlabel("predicted risk of death")
    ax1.set_ylabel("observed death rate")
    ax1.set_xlim(0, 1)
    ax1.set_ylim(-0.02, 1.02)
    ax1.set_title(
        f"Calibration on the external {len(y)} (ECE "
        f"{report['point']['model_calibration_error']:.3f})",
        fontsize=10,
    )
    ax1.legend(loc="upper left", fontsize=8)
    fpr, tpr = roc_curve(y, risk)
    ax2.plot(fpr, tpr, color="C0", label=f"dxassist model (AUC {report['point']['model_auc']:.3f})")
    ys_ = at_threshold(y, yan == 1)
    ax2.plot(
        [1 - ys_["specificity"]],
        [ys_["sensitivity"]],
        "s",
        color="C3",
        label=f"Yan et al. rule (AUC {report['point']['yan_auc']:.3f})",
    )
    mt = at_threshold(y, risk >= report["threshold"])
    ax2.plot(
        [1 - mt["specificity"]],
        [mt["sensitivity"]],
        "o",
        color="C0",
        mfc="white",
        label=f"model at threshold {report['threshold']:g}",
    )
    ax2.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
    ax2.set_xlabel("1 − specificity")
    ax2.set_ylabel("sensitivity")
    ax2.set_title("ROC on the external cohort", fontsize=10)
    ax2.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
