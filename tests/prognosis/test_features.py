"""The admission window (no value after the cut-off) and the lab value checks."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dxassist.errors import InputError
from dxassist.prognosis.features import (
    LABS,
    TEST_FILE,
    TRAIN_FILE,
    WINDOW,
    InvalidLabError,
    admission_features,
    check_labs,
    check_value,
    load_cohort,
)


@pytest.mark.parametrize("name", [TRAIN_FILE, TEST_FILE])
def test_no_feature_value_comes_from_after_the_cutoff(tongji: Path, name: str) -> None:
    """On the real cohorts: every value taken was drawn inside [first draw, first draw + 24 h],
    and it is the first non-missing value there (recomputed here straight from the CSV)."""
    patients = {p.patient_id: p for p in load_cohort(tongji / name)}
    with (tongji / name).open(newline="") as handle:
        raw: dict[str, list[dict[str, str]]] = {}
        for row in csv.DictReader(handle):
            raw.setdefault(row["patient_id_filled"], []).append(row)
    assert len(patients) == len(raw)
    taken = 0
    for pid, p in patients.items():
        draws = [r for r in raw[pid] if r["RE_DATE"]]
        if not draws:
            assert p.anchor is None and p.n_labs == 0
            continue
        first = min(datetime.fromisoformat(r["RE_DATE"]) for r in draws)
        assert p.anchor == first and p.cutoff == first + WINDOW
        for spec in LABS:
            when = p.taken_at[spec.key]
            inside = [
                (datetime.fromisoformat(r["RE_DATE"]), float(r[spec.column]))
                for r in draws
                if r[spec.column] and datetime.fromisoformat(r["RE_DATE"]) <= first + WINDOW
            ]
            if when is None:
                assert p.values[spec.key] is None and not inside
                continue
            taken += 1
            assert first <= when <= p.cutoff
            earliest = min(t for t, _ in inside)
            assert when == earliest
            assert p.values[spec.key] in {v for t, v in inside if t == earliest}
    assert taken > len(patients)  # most patients have most labs: the check is not vacuous


def _row(when: str, **labs: str) -> dict[str, str]:
    row = {
        "RE_DATE": when,
        "Admission time": "2020-02-01 08:00:00",
        "outcome": "1",
        **{s.column: "" for s in LABS},
    }
    for spec in LABS:
        if spec.key in labs:
            row[spec.column] = labs[spec.key]
    return row


def test_later_rows_never_reach_the_features() -> None:
    """Extreme values just after the window (and rows out of time order) are ignored."""
    rows = [
        _row("2020-02-02 09:01:00", LDH="1800", hsCRP="300", lymphocyte_pct="1"),  # 24 h 1 min
        _row("2020-02-01 09:00:00", lymphocyte_pct="22.5"),  # the first draw (anchor)
        _row("2020-02-02 09:00:00", hsCRP="12.5"),  # exactly 24 h: inside
        _row("2020-02-01 20:00:00", lymphocyte_pct="3.0"),  # inside but not the first
    ]
    p = admission_features("x", rows)
    assert p.anchor == datetime(2020, 2, 1, 9, 0)
    assert p.cutoff == p.anchor + timedelta(hours=24)
    assert p.values == {"LDH": None, "hsCRP": 12.5, "lymphocyte_pct": 22.5}
    assert p.taken_at["hsCRP"] == datetime(2020, 2, 2, 9, 0)
    rows.append(_row("2020-02-01 23:00:00", LDH="250"))
    assert admission_features("x", rows).values["LDH"] == 250.0


def test_a_patient_without_draws_has_no_features() -> None:
    p = admission_features("y", [_row("")])
    assert p.anchor is None and p.n_labs == 0


def test_an_impossible_value_in_a_cohort_file_names_the_patient() -> None:
    with pytest.raises(InputError, match="patient z: lymphocyte_pct"):
        admission_features("z", [_row("2020-02-01 09:00:00", lymphocyte_pct="140")])


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("LDH", -5, "negative"),
        ("hsCRP", "-0.1", "negative"),
        ("lymphocyte_pct", 100.5, "cannot exceed 100"),
        ("LDH", 45000, "no plausible serum LDH"),
        ("LDH", 0, "below 1"),
        ("hsCRP", 2500, "mg/L"),
        ("LDH", "4l2", "not a number"),
        ("LDH", "412 U/L", "not a number"),
        ("hsCRP", float("nan"), "not a finite number"),
        ("hsCRP", "inf", "not a finite number"),
        ("lymphocyte_pct", True, "not a number"),
        ("lymphocyte_pct", [9.5], "not a number"),
    ],
)
def test_impossible_values_are_refused_with_a_clear_message(
    key: str, value: object, message: str
) -> None:
    with pytest.raises(InvalidLabError, match=message) as err:
        check_value(key, value)
    assert str(err.value).startswith(key)


def test_possible_values_pass_unchanged() -> None:
    assert check_value("LDH", "412") == 412.0
    assert check_value("hsCRP", 0) == 0.0
    assert check_value("lymphocyte_pct", 100) == 100.0


def test_missing_labs_are_allowed_and_warned() -> None:
    values, warnings = check_labs({"ldh": 300, "hs-crp": "", "lymphocyte_pct": None})
    assert values == {"LDH": 300.0, "hsCRP": None, "lymphocyte_pct": None}
    assert len(warnings) == 2
    assert any(w.startswith("hsCRP not given") for w in warnings)
    assert any(w.startswith("lymphocyte_pct not given") for w in warnings)


def test_no_lab_at_all_unknown_and_duplicate_labs_are_refused() -> None:
    with pytest.raises(InvalidLabError, match="no lab value given"):
        check_labs({"LDH": ""})
    with pytest.raises(InvalidLabError, match="unknown lab 'ferritin'"):
        check_labs({"ferritin": 500})
    with pytest.raises(InvalidLabError, match="given twice"):
        check_labs({"LDH": 300, "ldh": 310})
