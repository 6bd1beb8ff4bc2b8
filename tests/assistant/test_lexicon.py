"""Free text -> symptoms: longest match, synonyms, negation and uncertainty, both languages."""

from __future__ import annotations

import pytest

from dxassist.assistant import data
from dxassist.assistant.lexicon import Lexicon, resolve


@pytest.fixture(scope="module")
def mz4(symptoms_root: None) -> Lexicon:
    return Lexicon.for_benchmark(data.load("mz4"))


def values(lex: Lexicon, text: str) -> dict[str, str]:
    return {m.symptom: m.value for m in lex.map(text)}


def test_chinese_synonyms_and_negation(mz4: Lexicon) -> None:
    text = "孩子发烧三天，没有咳嗽和流鼻涕，拉肚子"
    maps = mz4.map(text)
    got = {m.symptom: (m.value, m.text) for m in maps}
    assert got["发热"] == ("yes", "发烧")
    assert got["咳嗽"] == ("no", "咳嗽")
    assert got["鼻流涕"] == ("no", "流鼻涕")  # scope runs across 和 to the comma
    assert got["腹泻"] == ("yes", "拉肚子")  # the comma ends the negation
    for m in maps:  # spans point at the words that were mapped
        assert text[m.start : m.end] == m.text


@pytest.mark.parametrize(
    ("text", "symptom", "value"),
    [
        ("无发热", "发热", "no"),
        ("否认呕吐", "呕吐", "no"),
        ("宝宝不发烧", "发热", "no"),
        ("未见腹泻", "腹泻", "no"),
        ("可能有点腹胀", "腹胀", "unsure"),
        ("无明显诱因出现发热", "发热", "yes"),  # "no obvious cause" is not a negation
        ("没有咳嗽，但是发烧", "发热", "yes"),  # 但是 ends the scope
        ("不爱吃东西", "厌食", "yes"),  # the negation inside a synonym is part of the term
    ],
)
def test_chinese_cues(mz4: Lexicon, text: str, symptom: str, value: str) -> None:
    assert values(mz4, text)[symptom] == value


@pytest.mark.parametrize(
    ("text", "symptom", "value"),
    [
        ("fever for two days", "发热", "yes"),
        ("no fever", "发热", "no"),
        ("denies vomiting", "呕吐", "no"),
        ("without diarrhea or fever", "发热", "no"),
        ("no cough but has diarrhea", "腹泻", "yes"),
        ("maybe a runny nose", "鼻流涕", "unsure"),
        ("coughing at night", "咳嗽", "yes"),
    ],
)
def test_english_cues(mz4: Lexicon, text: str, symptom: str, value: str) -> None:
    assert values(mz4, text)[symptom] == value


def test_longest_match_wins(mz4: Lexicon) -> None:
    maps = mz4.map("干咳")
    assert [m.symptom for m in maps] == ["干咳"]  # not 咳嗽 inside it
    assert values(mz4, "dry cough") == {"干咳": "yes"}


def test_word_boundaries(mz4: Lexicon) -> None:
    # "no" inside "nose" is no negation; "cold" inside "scolded" is no symptom
    assert values(mz4, "runny nose, fever")["发热"] == "yes"
    assert values(mz4, "he was scolded") == {}


def test_english_vocabulary_and_chinese_input(symptoms_root: None) -> None:
    lex = Lexicon.for_benchmark(data.load("sd90"))
    got = values(lex, "Fever and headache, no vomiting")
    assert got == {"Fever": "yes", "Headache": "yes", "Vomiting": "no"}
    assert values(lex, "发烧，没有头痛") == {"Fever": "yes", "Headache": "no"}
    ddx = Lexicon.for_benchmark(data.load("ddxplus"))
    assert values(ddx, "cough, denies shortness of breath") == {"E_201": "yes", "E_66": "no"}


def test_resolve_later_mention_wins(mz4: Lexicon) -> None:
    maps = mz4.map("发烧了，现在不发烧")
    assert [m.value for m in maps] == ["yes", "no"]
    assert resolve(maps) == {"发热": data.NO}
    assert mz4.map("") == [] and mz4.map("   ") == []


def test_self_reports_map_to_their_explicit_symptoms(symptoms_root: None) -> None:
    """On real self-reports (Dxy test), most mapped present symptoms are in the case's
    recorded symptoms: the lexicon is not firing at random."""
    b = data.load("dxy")
    lex = Lexicon.for_benchmark(b)
    right = total = 0
    for c in b.test:
        for m in lex.map(c.text or ""):
            if m.value == "yes":
                total += 1
                right += m.symptom in c.all_symptoms()
    assert total > 100
    assert right / total > 0.6
