"""Loaders: official split sizes, validation carved from train only, versions kept apart."""

from __future__ import annotations

import pytest

from dxassist.assistant import data

# (train incl. validation, validation, test) as released
OFFICIAL = {
    "mz4": (568, None, 142),
    "mz4-1733": (1388, None, 345),
    "dxy": (423, None, 104),
    "mz10": (3305, None, 811),
    "gmd12": (1912 + 239, 239, 239),
    "sd90": (24000, None, 6000),
    "ddxplus": (0, 0, 2611),
}


@pytest.mark.parametrize("name", list(OFFICIAL))
def test_official_split_sizes(symptoms_root: None, name: str) -> None:
    b = data.load(name)
    train_all, val_n, test_n = OFFICIAL[name]
    assert len(b.train) + len(b.val) == train_all
    assert len(b.test) == test_n
    if val_n is not None:
        assert len(b.val) == val_n
    elif train_all:
        assert 0.1 < len(b.val) / train_all < 0.2  # the carved 15 %
    diseases = set(b.diseases)
    assert {c.disease for c in b.test} <= diseases
    assert sum(bool(c.explicit or c.implicit) for c in b.test) >= 0.97 * len(b.test)
    values = {v for c in b.train + b.test for v in c.all_symptoms().values()}
    assert values <= {data.YES, data.NO, data.UNSURE}


def test_validation_is_carved_from_train_never_test(symptoms_root: None) -> None:
    b = data.load("mz4")
    train_ids = {c.id for c in b.train}
    val_ids = {c.id for c in b.val}
    test_ids = {c.id for c in b.test}
    assert not train_ids & val_ids
    assert not val_ids & test_ids
    # stratified: every disease is in validation
    assert {c.disease for c in b.val} == set(b.diseases)
    # deterministic
    again = data.LOADERS["mz4"]()
    assert {c.id for c in again.val} == val_ids


def test_the_two_mz4_versions_are_kept_apart(symptoms_root: None) -> None:
    small, large = data.load("mz4"), data.load("mz4-1733")
    assert len(small.train) + len(small.val) + len(small.test) == 710
    assert len(large.train) + len(large.val) + len(large.test) == 1733
    assert set(small.diseases) == set(large.diseases)  # same 4 diseases, different cases
    assert small.symptoms != large.symptoms
    assert small.test[0].text  # the 710-case version carries the self-report text


def test_specific_records(symptoms_root: None) -> None:
    mz4 = data.load("mz4")
    first = (
        mz4.train[0]
        if mz4.train[0].id == "10450521"
        else next(c for c in mz4.train + mz4.val if c.id == "10450521")
    )
    assert first.disease == "上呼吸道感染"
    assert first.explicit == {"普通感冒": 0, "干咳": 0, "咳嗽": 0, "厌食": 0}
    mz10 = data.load("mz10")
    values = [v for c in mz10.train for v in c.implicit.values()]
    assert data.UNSURE in values  # MZ-10 records "not sure" ("2")
    ddx = data.load("ddxplus")
    case = ddx.test[0]
    assert case.disease == "Pneumonia" and case.age == 8 and case.sex == "M"
    assert case.explicit == {"E_66": data.YES} and "E_91" in case.implicit
    assert "E_57" not in case.implicit  # E_57 has only its default value "nowhere"
    assert ddx.knowledge["conditions"]["Anaphylaxis"]["severity"] == 1


def test_unknown_dataset_is_an_input_error() -> None:
    with pytest.raises(data.UnknownDatasetError, match="choose one of"):
        data.load("mz-11")
    assert data.check_dataset("MZ-10") == "mz10"
