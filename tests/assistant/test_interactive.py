"""Question choice by expected information gain, and the interactive protocol."""

from __future__ import annotations

import numpy as np

from dxassist.assistant import data
from dxassist.assistant.engine import get_assistant
from dxassist.assistant.model import SymptomModel
from dxassist.assistant.simulate import run_episode


def toy() -> SymptomModel:
    """Two diseases; symptom 0 tells them apart, symptom 1 says nothing, 2 says a little."""
    p_yes = np.array([[0.95, 0.5, 0.6], [0.05, 0.5, 0.4]])  # (D, S)
    A = np.stack([p_yes, 1 - p_yes, np.zeros_like(p_yes)])
    W = np.log(np.clip(A, 1e-12, None))
    W[2] = 0.0
    return SymptomModel(
        name="toy", dataset="toy", kind="naive_bayes", symptoms=["a", "b", "c"],
        diseases=["X", "Y"], W=W, b=np.zeros(2), A=A, stop_threshold=0.9, max_turns=5,
    )  # fmt: skip


def brute_force_gain(m: SymptomModel, logits: np.ndarray, s: int) -> float:
    def H(p: np.ndarray) -> float:
        return float(-(p * np.log(p + 1e-300)).sum())

    p = m.probs_of_logits(logits)
    expected = 0.0
    for k in range(3):
        pk = float((p * m.A[k, :, s]).sum())
        if pk > 0:
            expected += pk * H(m.probs_of_logits(logits + m.W[k, :, s]))
    return H(p) - expected


def test_most_informative_question_first() -> None:
    m = toy()
    g = m.gains(m.b.copy())
    assert int(np.argmax(g)) == 0
    assert abs(g[1]) < 1e-6  # an uninformative question gains nothing
    assert g[0] > g[2] > 0
    for s in range(3):
        assert np.isclose(g[s], brute_force_gain(m, m.b.copy(), s), atol=1e-5)
    asked = m.gains(m.b.copy(), {0})
    assert asked[0] == -np.inf and int(np.argmax(asked)) == 2


def test_gain_matches_brute_force_on_a_real_model() -> None:
    m = get_assistant("dxy").model
    logits = m.logits_of({m.sym_index["咳嗽"]: 0})
    g = m.gains(logits)
    for s in np.argsort(-g)[:3]:
        assert np.isclose(g[s], brute_force_gain(m, logits, int(s)), atol=1e-5)


def test_episode_stops_when_confident() -> None:
    m = toy()
    case = data.Case("1", "X", {}, {"a": data.YES})
    ep = run_episode(m, case, data.UNSURE)
    assert ep.asked == ("a",) and ep.turns == 1  # one answer takes p(X) past 0.9
    assert ep.probs[0] > 0.9 and ep.hits == 1


def test_episode_answers_from_implicit_and_caps_turns(symptoms_root: None) -> None:
    m = get_assistant("mz10").model
    b = data.load("mz10")
    case = b.test[0]
    ep = run_episode(m, case, b.unmentioned_answer, threshold=1.01, max_turns=4)
    assert ep.turns == 4
    assert not set(ep.asked) & set(case.explicit)  # never re-asks what was self-reported
    assert len(set(ep.asked)) == 4
