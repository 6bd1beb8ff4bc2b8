"""The numpy runtime: the shipped logistic model, the tree scorer, reasons, load errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from dxassist.errors import ModelError
from dxassist.prognosis.features import InvalidLabError
from dxassist.prognosis.runtime import PrognosisModel


def test_shipped_model_is_the_logistic_formula_of_its_json(
    prognosis_model: PrognosisModel,
) -> None:
    meta = json.loads(Path(prognosis_model.path or "").read_text())
    lr, feats = meta["logistic"], meta["features"]
    labs = {"LDH": 412.0, "hsCRP": 56.0, "lymphocyte_pct": 9.5}
    x = [math.log(labs["LDH"]), math.log(labs["hsCRP"] + 1.0), labs["lymphocyte_pct"]]
    assert [f["key"] for f in feats] == ["LDH", "hsCRP", "lymphocyte_pct"]
    z = lr["intercept"] + sum(
        c * (v - m) / s for c, v, m, s in zip(lr["coef"], x, lr["mean"], lr["scale"], strict=True)
    )
    result = prognosis_model.predict(labs, id="bed 12")
    assert result.risk == pytest.approx(1 / (1 + math.exp(-z)), abs=1e-12)
    assert result.id == "bed 12"
    assert result.band == prognosis_model.bands.band(result.risk)
    assert result.warnings == []
    # contributions add up to the log-odds and the reasons are ordered by their size
    assert sum(result.contributions.values()) + lr["intercept"] == pytest.approx(z)
    sizes = [abs(result.contributions[r.split()[0]]) for r in result.reasons]
    assert sizes == sorted(sizes, reverse=True) and len(sizes) == 3
    assert json.loads(json.dumps(result.to_json())).keys() == {
        "id",
        "risk",
        "band",
        "reasons",
        "warnings",
    }


def test_higher_ldh_raises_and_more_lymphocytes_lower_the_risk(
    prognosis_model: PrognosisModel,
) -> None:
    base = {"LDH": 300, "hsCRP": 20, "lymphocyte_pct": 20}
    r0 = prognosis_model.predict(base).risk
    assert prognosis_model.predict({**base, "LDH": 900}).risk > r0
    assert prognosis_model.predict({**base, "lymphocyte_pct": 40}).risk < r0


def test_missing_and_out_of_training_range_values_are_warned(
    prognosis_model: PrognosisModel,
) -> None:
    high = prognosis_model.transforms[0].high
    r = prognosis_model.predict({"LDH": high + 500, "lymphocyte_pct": 9.5})
    assert any("above the highest value in training" in w for w in r.warnings)
    assert any(w.startswith("hsCRP not given: scored as the training median") for w in r.warnings)
    # clipped: scored as the highest training value
    assert r.risk == prognosis_model.predict({"LDH": high, "lymphocyte_pct": 9.5}).risk


def test_impossible_values_are_refused_not_scored(prognosis_model: PrognosisModel) -> None:
    with pytest.raises(InvalidLabError, match="cannot exceed 100"):
        prognosis_model.predict({"LDH": 300, "lymphocyte_pct": 250})


def test_tree_ensemble_scorer_matches_scikit_learn() -> None:
    """The candidate not shipped today (gradient boosting) must also serve without
    scikit-learn: the exported trees + Platt scaling give scikit-learn's risks."""
    pytest.importorskip("sklearn")
    from dxassist.prognosis.runtime import FeatureTransform
    from dxassist.prognosis.train import _check_parity, _Fitted

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] - x[:, 2] + rng.normal(scale=0.8, size=200) > 0).astype(np.int64)
    fitted = _Fitted("gradient_boosting", x, y, seed=1)
    transforms = [
        FeatureTransform(k, -10, 10, 0, False, 0) for k in ("LDH", "hsCRP", "lymphocyte_pct")
    ]
    _check_parity("gradient_boosting", fitted.to_json(), transforms, x, fitted.risk(x))
    meta = {
        "format": "dxassist-prognosis/1",
        "name": "t",
        "version": "t",
        "kind": "gradient_boosting",
        "features": [t.to_json() for t in transforms],
        "gradient_boosting": fitted.to_json(),
        "bands": {"threshold": 0.5, "intermediate": 0.3, "high": 0.7},
    }
    model = PrognosisModel(meta)
    result = model.predict({"LDH": 1.0, "hsCRP": 0.0, "lymphocyte_pct": 0.5})
    assert result.risk == pytest.approx(float(fitted.risk(np.array([[1.0, 0.0, 0.5]]))[0]))
    logit = math.log(result.risk / (1 - result.risk))
    bias = (
        meta["gradient_boosting"]["platt"]["a"]
        * (
            meta["gradient_boosting"]["init"]
            + meta["gradient_boosting"]["learning_rate"]
            * sum(t["value"][0] for t in meta["gradient_boosting"]["trees"])
        )
        + meta["gradient_boosting"]["platt"]["b"]
    )
    assert bias + sum(result.contributions.values()) == pytest.approx(logit)


def test_load_errors_are_model_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        PrognosisModel.load(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ModelError, match="cannot read"):
        PrognosisModel.load(bad)
    bad.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ModelError, match="format"):
        PrognosisModel.load(bad)
    bad.write_text(json.dumps({"format": "dxassist-prognosis/1", "name": "x"}))
    with pytest.raises(ModelError, match="incomplete or malformed"):
        PrognosisModel.load(bad)
