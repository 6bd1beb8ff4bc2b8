"""Coded concepts of the findings and the AiResult taken from `dxassist read --json`."""

from __future__ import annotations

import math
from typing import Any

import pytest

from dxassist.cxr.taxonomy import DISPLAY_NAMES, FINDINGS
from dxassist.errors import InputError
from dxassist.interop import codes
from dxassist.interop.result import AiResult, ResultFormatError
from tests.interop.conftest import CrRead


def test_every_finding_has_its_snomed_code_and_model_card_meaning() -> None:
    assert tuple(codes.FINDING_CODES) == FINDINGS
    expected = {
        "normal": "17621005",
        "bacterial_pneumonia": "53084003",
        "viral_pneumonia": "75570004",
        "covid19": "840539006",
    }
    for key, code in codes.FINDING_CODES.items():
        concept = code.concept
        assert (concept.scheme_designator, concept.value) == ("SCT", expected[key])
        assert concept.meaning == DISPLAY_NAMES[key]
        assert len(concept.meaning) <= 64  # LO
    assert codes.ANY_PNEUMONIA.code == "233604007"
    assert {c.code for c in codes.FINDING_CODES.values()} == set(codes.FINDING_BY_CODE)


def test_local_codes_fit_their_value_representations() -> None:
    local = [
        codes.MOST_PROBABLE_FINDING,
        codes.HEATMAP_FINDING,
        codes.TRIAGE_PRIORITY,
        codes.READ_WARNING,
        codes.INTENDED_USE,
        *codes.PRIORITY_CODES.values(),
    ]
    for c in local:
        assert c.scheme_designator == codes.LOCAL_SCHEME
        assert len(c.value) <= 16 and len(c.meaning) <= 64  # SH, LO
    assert set(codes.PRIORITY_CODES) == {"urgent", "priority", "routine"}


def test_from_read_json_takes_the_real_read(cr_read: CrRead) -> None:
    r = AiResult.from_read_json(cr_read.json)
    assert r.probabilities == cr_read.json["probabilities"]
    assert r.top_finding == cr_read.json["top_finding"]
    assert r.priority == cr_read.json["priority"]
    assert r.heatmap_finding == cr_read.json["heatmap_finding"]
    assert (r.model_name, r.model_version) == (
        cr_read.json["model"]["name"],
        cr_read.json["model"]["version"],
    )
    assert r.warnings == cr_read.json["warnings"]
    assert math.isclose(r.abnormal, cr_read.json["abnormal"], abs_tol=2e-6)
    direct = AiResult.from_read_result(cr_read.read)
    assert {k: round(v, 6) for k, v in direct.probabilities.items()} == r.probabilities


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"probabilities": {"normal": 1.0}}, "must have the findings"),
        ({"probabilities": "x"}, "must be an object"),
        ({"top_finding": "fracture"}, "top finding 'fracture'"),
        ({"priority": "stat"}, "priority 'stat'"),
        ({"heatmap_finding": "nodule"}, "heatmap finding 'nodule'"),
        ({"model": {"name": "m"}}, "'model' must be an object with 'name' and 'version'"),
        ({"model": {"name": "", "version": "1"}}, "model model name must be a non-empty"),
        ({"warnings": "oops"}, "'warnings' must be a list"),
    ],
)
def test_from_read_json_refuses_bad_input_clearly(
    cr_read: CrRead, change: dict[str, Any], message: str
) -> None:
    d = {**cr_read.json, **change}
    with pytest.raises(ResultFormatError, match=message) as info:
        AiResult.from_read_json(d)
    assert isinstance(info.value, InputError)


@pytest.mark.parametrize("bad", [float("nan"), -0.1, 1.5, "0.3", True])
def test_from_read_json_refuses_bad_probabilities(cr_read: CrRead, bad: object) -> None:
    d = {**cr_read.json, "probabilities": {**cr_read.json["probabilities"], "covid19": bad}}
    with pytest.raises(ResultFormatError, match="probability of covid19"):
        AiResult.from_read_json(d)


def test_from_read_json_names_missing_keys() -> None:
    with pytest.raises(ResultFormatError, match="lacks probabilities, top_finding"):
        AiResult.from_read_json({"priority": "routine", "model": {}})
    with pytest.raises(ResultFormatError, match="JSON object"):
        AiResult.from_read_json([])  # type: ignore[arg-type]
