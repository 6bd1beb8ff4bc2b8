"""The assistant says when its numbers carry little information (DDXPlus equal prevalence,
weak evidence), raises red flags only on positive evidence, never asks diagnoses or tests,
and asks DDXPlus sub-questions only after their parent."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dxassist.assistant import askable, data
from dxassist.assistant.cli import register
from dxassist.assistant.engine import get_assistant
from dxassist.assistant.simulate import run_episode


def test_ddxplus_says_equal_prevalence_and_weak_evidence() -> None:
    op = get_assistant("ddxplus").opinion({}, "sore throat and fever, no cough")
    assert any("equally common" in n and "overstated" in n for n in op.notes)
    info = op.information
    # 2 present symptoms, but the differential is spread over ~6 diseases: weak
    assert info["present"] == 2 and info["effective_diseases"] > 5 and info["weak"]
    assert any(n.startswith("too little information to rank these") for n in op.notes)
    # a red flag that stands names the present symptoms the condition's knowledge base lists
    for flag in op.red_flags:
        assert "if every condition were equally common" in flag and "fits:" in flag


def test_enough_evidence_is_not_weak() -> None:
    op = get_assistant("ddxplus").opinion(
        {}, "cough and fever and runny nose, sore throat, muscle pain"
    )
    assert not op.information["weak"]
    assert not any(n.startswith("too little information") for n in op.notes)
    assert op.information["nats_from_prior"] > np.log(2)


def test_no_red_flag_without_positive_evidence() -> None:
    a = get_assistant("ddxplus")
    op = a.opinion({}, "no fever, no cough, no runny nose, no pain, no sore throat, no shortness "
                   "of breath")  # fmt: skip
    severe = [d for d in op.differential if d.get("severity", 9) <= 2 and d["probability"] >= 0.05]
    assert severe, op.differential  # a severe condition is likely only by elimination ...
    assert op.red_flags == []  # ... so no red flag: nothing present supports it
    assert op.information["weak"]


def test_a_confident_answer_is_not_weak() -> None:
    op = get_assistant("gmd12").opinion({"乳房胀痛": "yes"})
    assert op.confident and op.information["present"] == 1 and not op.information["weak"]
    op = get_assistant("mz4").opinion({"咳嗽": "yes"})
    assert not op.confident and op.information["weak"]


def test_trained_datasets_have_no_equal_prior_note() -> None:
    op = get_assistant("mz10").opinion({"咳嗽": "yes", "发热": "yes"})
    assert not any("equally common" in n for n in op.notes)


@pytest.mark.parametrize(
    ("term", "labels", "why"),
    [
        ("支气管炎", [], "name ending"),
        ("普通感冒", [], "name ending"),
        ("血常规", [], "test"),
        ("胸片", [], "test"),
        ("钙", [], "test"),
        ("急性上呼吸道感染", ["上呼吸道感染"], "disease label"),
        ("新生儿黄疸", ["新生儿黄疸"], "disease label"),
        ("百日咳", [], "diagnosis"),
    ],
)
def test_diagnosis_and_test_terms(term: str, labels: list[str], why: str) -> None:
    reason = askable.why_not_asked(term, labels)
    assert reason is not None and why in reason


@pytest.mark.parametrize("term", ["发热", "咳嗽", "腹泻", "黄疸", "口腔溃疡", "荨麻疹", "头痛"])
def test_symptoms_stay_questions(term: str) -> None:
    assert askable.why_not_asked(term, ["小儿发热", "小儿咳嗽", "小儿腹泻", "新生儿黄疸"]) is None


def test_english_label_inside_a_complaint_is_kept() -> None:
    assert askable.why_not_asked("Anxiety and nervousness", ["Anxiety"]) is None


def test_mz10_never_asks_a_diagnosis_but_accepts_it() -> None:
    a = get_assistant("mz10")
    m = a.model
    assert {"支气管炎", "感冒", "上呼吸道感染"} <= set(m.not_asked)
    assert not {"发热", "咳嗽", "腹泻"} & set(m.not_asked)
    op = a.opinion({"支气管炎": "yes"}, n_questions=20)  # usable as input
    assert op.used == {"支气管炎": "yes"}
    assert op.next_questions and not {q["symptom"] for q in op.next_questions} & set(m.not_asked)
    # the interview evaluation follows the same rule
    bench = data.load("mz10")
    for case in bench.val[:40]:
        ep = run_episode(m, case, bench.unmentioned_answer)
        assert not set(ep.asked) & set(m.not_asked)


def test_ddxplus_sub_questions_wait_for_their_parent() -> None:
    a = get_assistant("ddxplus")
    m = a.model
    rash = {c for c, p in m.parents.items() if p == "E_129"}
    assert {"E_130", "E_132", "E_134"} <= rash
    op = a.opinion({}, "sore throat and fever, no cough", n_questions=30)
    asked = {q["symptom"] for q in op.next_questions}
    assert not asked & rash and "E_129" in asked
    idx = {m.sym_index[c] for c in rash}
    assert idx <= m.unaskable({m.sym_index["E_129"]: data.NO})
    assert not idx & m.unaskable({m.sym_index["E_129"]: data.YES})  # now they may be asked
    bench = data.load("ddxplus")
    for case in bench.test[:60]:
        ep = run_episode(m, case, bench.unmentioned_answer)
        for i, s in enumerate(ep.asked):
            if s in m.parents:
                parent = m.parents[s]
                assert case.explicit.get(parent) == data.YES or parent in ep.asked[:i]


def _main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="dxassist")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_cli_default_dataset_and_dataset_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["assist", "--text", "sore throat and fever, no cough", "--json"]) == 0
    op = json.loads(capsys.readouterr().out)
    assert op["dataset"] == "ddxplus" and "no dataset named" in op["notes"][0]
    assert _main(["assist", "--text", "发烧三天，咳嗽，没有腹泻", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dataset"] == "gmd12"
    assert _main(["assist", "datasets"]) == 0
    out = capsys.readouterr().out
    assert "mz4: MZ-4 (Muzhi) - paediatric; Chinese; 4 diseases" in out
    assert "ddxplus: DDXPlus - adults and children" in out and "Default: ddxplus" in out
    with pytest.raises(SystemExit):
        _main(["assist", "--help"])
    helptext = capsys.readouterr().out
    assert "paediatric" in helptext and "equally common" in helptext


def test_symptom_list_says_what_is_asked(capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["assist", "symptoms", "--dataset", "mz10"]) == 0
    lines = {ln.split("\t")[0]: ln for ln in capsys.readouterr().out.splitlines()}
    assert lines["支气管炎"].endswith("no: a diagnosis (name ending)")
    assert lines["咳嗽"].endswith("\tyes")
    assert _main(["assist", "symptoms", "--dataset", "ddxplus"]) == 0
    lines = {ln.split("\t")[0]: ln for ln in capsys.readouterr().out.splitlines()}
    assert lines["E_132"].endswith("after E_129=yes")
