"""Yan et al. 2020 three-marker rule: every branch, and missing values."""

from __future__ import annotations

import pytest

from dxassist.prognosis.yan import yan_rule


@pytest.mark.parametrize(
    ("ldh", "crp", "lym", "expected"),
    [
        (365.0, 1.0, 40.0, 1),  # LDH >= 365: death whatever the rest
        (364.9, 41.1, 2.0, 0),  # LDH < 365, hs-CRP < 41.2: survival
        (300.0, 41.2, 14.6, 1),  # hs-CRP >= 41.2 and lymphocytes < 14.7: death
        (300.0, 80.0, 14.7, 0),  # lymphocytes >= 14.7: survival
        (None, 80.0, 10.0, 1),  # missing LDH goes the "< 365" way
        (300.0, None, 2.0, 0),  # missing hs-CRP goes the "< 41.2" way
        (300.0, 80.0, None, 1),  # missing lymphocytes go the "< 14.7" way
        (900.0, None, None, 1),
    ],
)
def test_rule(ldh: float | None, crp: float | None, lym: float | None, expected: int) -> None:
    assert yan_rule({"LDH": ldh, "hsCRP": crp, "lymphocyte_pct": lym}) == expected
