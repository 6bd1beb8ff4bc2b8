"""Train the outcome-risk model on the 375 training patients (needs scikit-learn).

Model choice uses patient-level cross-validation on the 375 only (one row per patient, so
every fold split is a patient split): 5 x 5 repeated stratified folds compare

- ``logistic``: L2 logistic regression on standardised inputs, its strength chosen by an
  inner 5-fold CV on log-loss (a logistic model fitted on log-loss is calibrated by
  construction);
- ``gradient_boosting``: 100 depth-2 trees (learning rate 0.05, >= 10 patients a leaf),
  Platt-calibrated on inner 5-fold out-of-fold margins.

The candidate with the lower mean CV Brier score is refitted on all 375 and exported as
JSON that :mod:`dxassist.prognosis.runtime` scores with numpy. The decision threshold
and risk bands come from the chosen candidate's out-of-fold risks (never the 110).
The external 110 are not read here.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dxassist.cxr.metrics import roc_auc, threshold_for_sensitivity, threshold_for_specificity
from dxassist.prognosis.evaluate import brier, calibration_error, log_loss
from dxassist.prognosis.features import (
    LAB_KEYS,
    TRAIN_FILE,
    WINDOW,
    AdmissionFeatures,
    load_cohort,
)
from dxassist.prognosis.runtime import DEFAULT_MODEL_NAME, FORMAT, FeatureTransform
from dxassist.prognosis.runtime import transform_matrix as _transform_matrix

SEED = 20200228
N_SPLITS, N_REPEATS = 5, 5
#: (log, offset) per lab: LDH and hs-CRP are right-skewed; hs-CRP can be 0
TRANSFORM = {"LDH": (True, 0.0), "hsCRP": (True, 1.0), "lymphocyte_pct": (False, 0.0)}
CANDIDATES = ("logistic", "gradient_boosting")


@dataclass(frozen=True)
class TrainConfig:
    data_dir: Path
    out: Path
    model_version: str = "0.0.0-dev"
    seed: int = SEED


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fit_transforms(patients: list[AdmissionFeatures]) -> list[FeatureTransform]:
    out = []
    for key in LAB_KEYS:
        vals = np.array([p.values[key] for p in patients if p.values[key] is not None])
        log, offset = TRANSFORM[key]
        out.append(
            FeatureTransform(
                key=key,
                low=float(vals.min()),
                high=float(vals.max()),
                median=float(np.median(vals)),
                log=log,
                offset=offset,
            )
        )
    return out


class _Fitted:
    """One fitted candidate: scores model inputs and exports itself as JSON."""

    def __init__(self, kind: str, x: npt.NDArray[np.float64], y: npt.NDArray[np.int64], seed: int):
        from sklearn.ensemble import GradientBoostingClassifier
        from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        self.kind = kind
        inner = StratifiedKFold(5, shuffle=True, random_state=seed)
        if kind == "logistic":
            self.mean = x.mean(axis=0)
            self.scale = x.std(axis=0)
            z = (x - self.mean) / self.scale
            with warnings.catch_warnings():  # scikit-learn 1.9 announces 1.10 API changes
                warnings.simplefilter("ignore", FutureWarning)
                self.lr = LogisticRegressionCV(
                    Cs=list(np.logspace(-3, 3, 13)),
                    cv=inner,
                    scoring="neg_log_loss",
                    max_iter=1000,
                ).fit(z, y)
        else:
            params: dict[str, Any] = {
                "n_estimators": 100,
                "learning_rate": 0.05,
                "max_depth": 2,
                "min_samples_leaf": 10,
                "random_state": seed,
            }
            self.gb = GradientBoostingClassifier(**params).fit(x, y)
            oof = cross_val_predict(
                GradientBoostingClassifier(**params), x, y, cv=inner, method="decision_function"
            )
            self.platt = LogisticRegression(C=1e6, max_iter=1000).fit(oof.reshape(-1, 1), y)

    def risk(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if self.kind == "logistic":
            p = self.lr.predict_proba((x - self.mean) / self.scale)[:, 1]
        else:
            margin = self.gb.decision_function(x)
            p = self.platt.predict_proba(margin.reshape(-1, 1))[:, 1]
        return np.asarray(p, np.float64)

    def to_json(self) -> dict[str, Any]:
        if self.kind == "logistic":
            return {
                "mean": [float(v) for v in self.mean],
                "scale": [float(v) for v in self.scale],
                "coef": [float(v) for v in self.lr.coef_[0]],
                "intercept": float(self.lr.intercept_[0]),
                "C": float(self.lr.C_[0]),
            }
        trees = []
        for est in self.gb.estimators_[:, 0]:
            t = est.tree_
            trees.append(
                {
                    "feature": [int(v) for v in t.feature],
                    "threshold": [float(v) for v in t.threshold],
                    "left": [int(v) for v in t.children_left],
                    "right": [int(v) for v in t.children_right],
                    "value": [float(v) for v in t.value[:, 0, 0]],
                }
            )
        prior = float(self.gb.init_.class_prior_[1])
        return {
            "init": float(np.log(prior / (1 - prior))),
            "learning_rate": float(self.gb.learning_rate),
            "trees": trees,
            "platt": {"a": float(self.platt.coef_[0, 0]), "b": float(self.platt.intercept_[0])},
        }


def _youden_threshold(y: npt.NDArray[np.int64], p: npt.NDArray[np.float64]) -> float:
    best, best_t = -1.0, 0.5
    for t in np.unique(p):
        pred = p >= t
        j = pred[y == 1].mean() + (~pred[y == 0]).mean() - 1
        if j > best:
            best, best_t = float(j), float(t)
    return best_t


def cross_validate(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.int64], seed: int
) -> tuple[dict[str, dict[str, Any]], dict[str, npt.NDArray[np.float64]]]:
    """Per candidate: CV metrics (mean, sd over repeats) and the mean out-of-fold risk."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    folds = list(
        RepeatedStratifiedKFold(n_splits=N_SPLITS, n_repeats=N_REPEATS, random_state=seed).split(
            x, y
        )
    )
    summary: dict[str, dict[str, Any]] = {}
    oof_mean: dict[str, npt.NDArray[np.float64]] = {}
    for kind in CANDIDATES:
        oof = np.zeros((N_REPEATS, len(y)))
        for k, (tr, te) in enumerate(folds):
            model = _Fitted(kind, x[tr], y[tr], seed + k)
            oof[k // N_SPLITS, te] = model.risk(x[te])
        per_rep = {
            "auc": [roc_auc(y, o) for o in oof],
            "brier": [brier(y, o) for o in oof],
            "log_loss": [log_loss(y, o) for o in oof],
            "calibration_error": [calibration_error(y, o) for o in oof],
        }
        summary[kind] = {
            m: {"mean": float(np.mean(v)), "sd": float(np.std(v))} for m, v in per_rep.items()
        }
        oof_mean[kind] = oof.mean(axis=0)
    return summary, oof_mean


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Fit, choose by CV, write the model JSON to ``cfg.out``; returns the metadata."""
    path = cfg.data_dir / TRAIN_FILE
    cohort = load_cohort(path)
    patients = [p for p in cohort if p.n_labs > 0]
    transforms = fit_transforms(patients)
    x = _transform_matrix(transforms, [p.values for p in patients])
    y = np.array([p.outcome for p in patients], dtype=np.int64)

    summary, oof = cross_validate(x, y, cfg.seed)
    chosen = min(CANDIDATES, key=lambda k: summary[k]["brier"]["mean"])
    risk = oof[chosen]
    threshold = round(_youden_threshold(y, risk), 3)
    intermediate = round(min(threshold_for_sensitivity(y, risk, 0.95), threshold), 3)
    high = round(max(threshold_for_specificity(y, risk, 0.95), threshold), 3)
    # both candidates are refitted and checked, so the numpy scorer of either is tested
    for kind in CANDIDATES:
        fitted = _Fitted(kind, x, y, cfg.seed)
        _check_parity(kind, fitted.to_json(), transforms, x, fitted.risk(x))
        if kind == chosen:
            exported = fitted.to_json()

    import sklearn

    meta: dict[str, Any] = {
        "format": FORMAT,
        "name": DEFAULT_MODEL_NAME,
        "version": cfg.model_version,
        "kind": chosen,
        "outcome": "in-hospital death (Tongji cohort outcome = 1)",
        "admission_window": (
            "first non-missing value of each lab drawn at most "
            f"{int(WINDOW.total_seconds() // 3600)} h after the patient's first blood draw"
        ),
        "features": [t.to_json() for t in transforms],
        chosen: exported,
        "bands": {
            "threshold": threshold,
            "intermediate": intermediate,
            "high": high,
            "rule": "threshold: Youden's J on out-of-fold CV risk; intermediate: risk that "
            "catches 95% of CV deaths; high: risk 95% of CV survivors stay below",
        },
        "training": {
            "data_file": TRAIN_FILE,
            "data_sha256": _sha256(path),
            "patients_in_file": len(cohort),
            "patients_used": len(patients),
            "patients_without_admission_labs": len(cohort) - len(patients),
            "deaths_used": int(y.sum()),
            "missing_per_lab": {k: sum(p.values[k] is None for p in patients) for k in LAB_KEYS},
            "seed": cfg.seed,
            "cv": f"{N_REPEATS} x {N_SPLITS}-fold repeated stratified, patient-level",
            "selection": "lowest mean CV Brier score",
            "cv_results": summary,
            "cv_threshold_metrics": _at_threshold(y, risk, threshold),
            "scikit_learn": sklearn.__version__,
        },
    }
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    cfg.out.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return meta


def _at_threshold(
    y: npt.NDArray[np.int64], p: npt.NDArray[np.float64], t: float
) -> dict[str, float]:
    pred = p >= t
    return {
        "accuracy": float((pred == (y == 1)).mean()),
        "sensitivity": float(pred[y == 1].mean()),
        "specificity": float((~pred[y == 0]).mean()),
    }


def _check_parity(
    kind: str,
    exported: dict[str, Any],
    transforms: list[FeatureTransform],
    x: npt.NDArray[np.float64],
    expected: npt.NDArray[np.float64],
) -> None:
    """The numpy runtime must give scikit-learn's risks from the exported JSON."""
    from dxassist.prognosis.runtime import PrognosisModel, _sigmoid

    meta = {
        "format": FORMAT,
        "name": DEFAULT_MODEL_NAME,
        "version": "parity",
        "kind": kind,
        "features": [t.to_json() for t in transforms],
        kind: exported,
        "bands": {"threshold": 0.5, "intermediate": 0.5, "high": 0.5},
    }
    logit, _ = PrognosisModel(meta).logit_and_contrib(x)
    worst = float(np.max(np.abs(_sigmoid(logit) - expected)))
    if worst > 1e-9:
        raise RuntimeError(f"exported {kind} model differs from scikit-learn by {worst:.2e}")
