"""Fixtures for the assistant tests: the benchmarks in shared/data/symptoms (read in place)
and the shipped models in models/assist."""

from __future__ import annotations

import pytest

from dxassist.assistant import data
from dxassist.assistant.engine import Assistant, get_assistant


@pytest.fixture(scope="session")
def symptoms_root() -> None:
    root = data.symptoms_root()
    if not (root / "mz10" / "train_set.json").is_file():
        pytest.fail(f"symptom benchmarks not found at {root}; set DXASSIST_SYMPTOM_DATA")


@pytest.fixture(scope="session")
def bench(symptoms_root: None) -> data.Benchmark:
    """MZ-10 (the default benchmark of the issue)."""
    return data.load("mz10")


@pytest.fixture(scope="session")
def mz10() -> Assistant:
    return get_assistant("mz10")
