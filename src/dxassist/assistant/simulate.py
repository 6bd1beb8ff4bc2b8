"""The interactive evaluation the automatic-diagnosis papers use, and batch scoring.

Start from a case's explicit (self-reported) symptoms; ask the unasked symptom with the
highest expected information gain (never a diagnosis or test term, never a sub-question
before its parent was answered yes: the same rule as the assistant, model.unaskable);
answer from the case's implicit symptoms, and a symptom
the case does not mention gets the benchmark's "unmentioned" answer (not sure; DDXPlus:
no). Stop when the top probability reaches the model's threshold, when no question gains
information, or at the turn cap. Diagnose with the final differential.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dxassist.assistant.data import Case
from dxassist.assistant.model import MIN_GAIN, SymptomModel


@dataclass(frozen=True)
class Episode:
    probs: NDArray[np.float64]
    turns: int
    asked: tuple[str, ...]
    #: how many of the asked symptoms were in the case's implicit set
    hits: int


def state_of(model: SymptomModel, symptoms: dict[str, int]) -> dict[int, int]:
    idx = model.sym_index
    return {idx[s]: v for s, v in symptoms.items() if s in idx}


def run_episode(
    model: SymptomModel,
    case: Case,
    unmentioned: int,
    *,
    threshold: float | None = None,
    max_turns: int | None = None,
) -> Episode:
    threshold = model.stop_threshold if threshold is None else threshold
    max_turns = model.max_turns if max_turns is None else max_turns
    answers = state_of(model, case.explicit)
    record = state_of(model, case.all_symptoms())
    implicit = set(state_of(model, case.implicit))
    logits = model.logits_of(answers)
    asked: list[str] = []
    hits = 0
    for _ in range(max_turns):
        p = model.probs_of_logits(logits)
        if p.max() >= threshold:
            break
        gain = model.question_gains(logits, answers)
        s = int(np.argmax(gain))
        if not np.isfinite(gain[s]) or gain[s] < MIN_GAIN:
            break
        k = record.get(s, unmentioned)
        answers[s] = k
        logits = logits + model.W[k, :, s]
        asked.append(model.symptoms[s])
        hits += s in implicit
    return Episode(model.probs_of_logits(logits), len(asked), tuple(asked), hits)


def matrix(model: SymptomModel, cases: list[Case], which: str) -> NDArray[np.int8]:
    """(N, S) states: ``which`` = "explicit" or "full" (explicit + implicit)."""
    M = np.full((len(cases), len(model.symptoms)), -1, dtype=np.int8)
    for i, c in enumerate(cases):
        syms = c.explicit if which == "explicit" else c.all_symptoms()
        for s, v in state_of(model, syms).items():
            M[i, s] = v
    return M


def labels(model: SymptomModel, cases: list[Case]) -> NDArray[np.int64]:
    return np.array([model.dis_index.get(c.disease, -1) for c in cases], dtype=np.int64)


def topk_hits(probs: NDArray[np.float64], y: NDArray[np.int64], k: int) -> NDArray[np.bool_]:
    order = np.argsort(-probs, axis=1)[:, :k]
    hits: NDArray[np.bool_] = (order == y[:, None]).any(axis=1)
    return hits
