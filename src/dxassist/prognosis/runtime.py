"""Run the shipped outcome-risk model in plain numpy (no scikit-learn at serving time).

One obvious call::

    model = PrognosisModel.load()                       # models/dxassist-prognosis-3lab.json
    result = model.predict({"LDH": 412, "hsCRP": 56, "lymphocyte_pct": 9.5}, id="bed 12")
    result.risk, result.band, result.reasons, result.warnings

The JSON file holds everything: per-lab transform (clip to the training range, impute the
training median, log), and either logistic-regression coefficients or a small
gradient-boosted tree ensemble with a Platt calibration, plus the risk-band thresholds.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dxassist.errors import ModelError
from dxassist.prognosis.features import BY_KEY, check_labs

DEFAULT_MODEL_NAME = "dxassist-prognosis-3lab"
FORMAT = "dxassist-prognosis/1"


def models_dir() -> Path:
    """Where shipped models live: $DXASSIST_MODELS_DIR, else the repository's models/."""
    env = os.environ.get("DXASSIST_MODELS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "models"


@dataclass(frozen=True)
class FeatureTransform:
    """How one raw lab value becomes a model input."""

    key: str
    low: float  # training minimum: lower values are clipped (with a warning)
    high: float  # training maximum
    median: float  # training median: used for a missing value (with a warning)
    log: bool  # model input is log(value + offset)
    offset: float

    def apply(self, value: float | None) -> float:
        v = self.median if value is None else min(max(value, self.low), self.high)
        return math.log(v + self.offset) if self.log else v

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "low": self.low,
            "high": self.high,
            "median": self.median,
            "log": self.log,
            "offset": self.offset,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FeatureTransform:
        return cls(
            str(d["key"]),
            float(d["low"]),
            float(d["high"]),
            float(d["median"]),
            bool(d["log"]),
            float(d["offset"]),
        )


def transform_matrix(
    transforms: Sequence[FeatureTransform], rows: Sequence[Mapping[str, float | None]]
) -> npt.NDArray[np.float64]:
    """Model inputs (n, k) for rows of raw values; shared by training and serving."""
    return np.array(
        [[t.apply(r.get(t.key)) for t in transforms] for r in rows], dtype=np.float64
    ).reshape(len(rows), len(transforms))


@dataclass(frozen=True)
class Bands:
    """Risk bands: low < `intermediate` <= intermediate < `high` <= high."""

    intermediate: float
    high: float
    threshold: float  # the decision threshold for accuracy / sensitivity / specificity

    def band(self, risk: float) -> str:
        if risk >= self.high:
            return "high"
        if risk >= self.intermediate:
            return "intermediate"
        return "low"


@dataclass
class Result:
    """The outcome-risk answer for one patient (the CLI, API and page show this)."""

    id: str | None
    risk: float
    band: str
    reasons: list[str]
    warnings: list[str]
    #: per-lab contribution to the log-odds of death, relative to the model's baseline
    contributions: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "risk": round(self.risk, 4),
            "band": self.band,
            "reasons": self.reasons,
            "warnings": self.warnings,
        }


def _sigmoid(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-z))
    return out


class _Trees:
    """A gradient-boosted ensemble of regression trees (scikit-learn layout, float32 splits)."""

    def __init__(self, d: dict[str, Any]) -> None:
        self.init = float(d["init"])
        self.learning_rate = float(d["learning_rate"])
        self.trees = [
            (
                np.asarray(t["feature"], np.int64),
                np.asarray(t["threshold"], np.float64),
                np.asarray(t["left"], np.int64),
                np.asarray(t["right"], np.int64),
                np.asarray(t["value"], np.float64),
            )
            for t in d["trees"]
        ]

    def margin_and_contrib(
        self, x: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Raw margins (n,) and per-feature path contributions (n, k) (Saabas)."""
        n, k = x.shape
        x32 = x.astype(np.float32).astype(np.float64)  # scikit-learn splits on float32
        margin = np.full(n, self.init)
        contrib = np.zeros((n, k))
        for feature, threshold, left, right, value in self.trees:
            for i in range(n):
                node = 0
                margin[i] += self.learning_rate * value[0]
                while left[node] >= 0:
                    f = feature[node]
                    child = left[node] if x32[i, f] <= threshold[node] else right[node]
                    contrib[i, f] += self.learning_rate * (value[child] - value[node])
                    node = child
                margin[i] += self.learning_rate * (value[node] - value[0])
        return margin, contrib


class PrognosisModel:
    """The outcome-risk model: transforms, a logistic or tree scorer, bands."""

    def __init__(self, meta: dict[str, Any], path: Path | None = None) -> None:
        try:
            if meta.get("format") != FORMAT:
                raise ModelError(
                    f"model format {meta.get('format')!r} is not {FORMAT!r}; use a model "
                    "trained by this dxassist (`dxassist prognosis train`)"
                )
            self.meta = meta
            self.path = path
            self.name = str(meta["name"])
            self.version = str(meta["version"])
            self.kind = str(meta["kind"])
            self.transforms = [FeatureTransform.from_json(t) for t in meta["features"]]
            b = meta["bands"]
            self.bands = Bands(float(b["intermediate"]), float(b["high"]), float(b["threshold"]))
            if self.kind == "logistic":
                lr = meta["logistic"]
                self.mean = np.asarray(lr["mean"], np.float64)
                self.scale = np.asarray(lr["scale"], np.float64)
                self.coef = np.asarray(lr["coef"], np.float64)
                self.intercept = float(lr["intercept"])
                if not (
                    len(self.mean) == len(self.scale) == len(self.coef) == len(self.transforms)
                ):
                    raise ModelError("logistic model: coefficient count does not match features")
            elif self.kind == "gradient_boosting":
                self.trees = _Trees(meta["gradient_boosting"])
                self.platt_a = float(meta["gradient_boosting"]["platt"]["a"])
                self.platt_b = float(meta["gradient_boosting"]["platt"]["b"])
            else:
                raise ModelError(f"unknown model kind {self.kind!r}")
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelError(
                f"prognosis model metadata is incomplete or malformed ({exc!r})"
            ) from exc
        for t in self.transforms:
            if t.key not in BY_KEY:
                raise ModelError(f"model uses lab {t.key!r}, which this dxassist does not know")

    @classmethod
    def load(cls, name_or_path: str | Path | None = None) -> PrognosisModel:
        """``models/<name>.json`` or an explicit ``.json`` path (default: the shipped model)."""
        if name_or_path is None:
            name_or_path = os.environ.get("DXASSIST_PROGNOSIS_MODEL", DEFAULT_MODEL_NAME)
        p = Path(name_or_path)
        path = p if p.suffix == ".json" else models_dir() / f"{p.name}.json"
        if not path.is_file():
            raise ModelError(
                f"prognosis model {path} not found; set DXASSIST_MODELS_DIR or run "
                "`dxassist prognosis train`"
            )
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"cannot read prognosis model {path}: {exc}") from exc
        if not isinstance(meta, dict):
            raise ModelError(f"{path} is not a prognosis model (not a JSON object)")
        return cls(meta, path)

    @property
    def keys(self) -> list[str]:
        return [t.key for t in self.transforms]

    # ------------------------------------------------------------------ scoring

    def logit_and_contrib(
        self, x: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Calibrated log-odds of death (n,) and per-feature contributions (n, k)."""
        if self.kind == "logistic":
            contrib = self.coef * (x - self.mean) / self.scale
            return self.intercept + contrib.sum(axis=1), contrib
        margin, contrib = self.trees.margin_and_contrib(x)
        return self.platt_a * margin + self.platt_b, self.platt_a * contrib

    def risk_of(self, rows: Sequence[Mapping[str, float | None]]) -> npt.NDArray[np.float64]:
        """Risk of death for already-checked raw values (evaluation uses this)."""
        logit, _ = self.logit_and_contrib(transform_matrix(self.transforms, rows))
        return _sigmoid(logit)

    def predict(self, labs: Mapping[str, object], id: str | None = None) -> Result:
        """Check the labs (InvalidLabError if impossible) and score one patient."""
        values, warnings = check_labs(labs)
        used = {k: values[k] for k in self.keys}
        for t in self.transforms:
            v = used[t.key]
            spec = BY_KEY[t.key]
            if v is None:
                warnings = [w for w in warnings if not w.startswith(f"{t.key} not given")]
            elif v > t.high:
                warnings.append(
                    f"{t.key} {v:g} {spec.unit} is above the highest value in training "
                    f"({t.high:g}); it was scored as {t.high:g}"
                )
            elif v < t.low:
                warnings.append(
                    f"{t.key} {v:g} {spec.unit} is below the lowest value in training "
                    f"({t.low:g}); it was scored as {t.low:g}"
                )
        logit, contrib = self.logit_and_contrib(transform_matrix(self.transforms, [used]))
        risk = float(_sigmoid(logit)[0])
        contributions = {k: float(c) for k, c in zip(self.keys, contrib[0], strict=True)}
        for t in self.transforms:
            if used[t.key] is None:
                warnings.append(
                    f"{t.key} not given: scored as the training median ({t.median:g} "
                    f"{BY_KEY[t.key].unit}; {contributions[t.key]:+.2f} log-odds vs. the "
                    "average training patient); the risk is less reliable"
                )
        return Result(
            id=id,
            risk=risk,
            band=self.bands.band(risk),
            reasons=self._reasons(used, contributions),
            warnings=warnings,
            contributions=contributions,
        )

    def _reasons(
        self, values: Mapping[str, float | None], contrib: Mapping[str, float]
    ) -> list[str]:
        """The given labs ordered by how much they move the risk, in plain words. A lab not
        given is no reason: its warning says it was scored as the training median."""
        out = []
        for key in sorted(contrib, key=lambda k: -abs(contrib[k])):
            c = contrib[key]
            spec = BY_KEY[key]
            v = values[key]
            if v is None:
                continue
            shown = f"{v:g} {spec.unit}"
            if abs(c) < 0.05:
                effect = "hardly changes the risk"
            else:
                effect = "raises the risk" if c > 0 else "lowers the risk"
            out.append(
                f"{key} {shown} {effect} ({c:+.2f} log-odds vs. the average training patient)"
            )
        return out
