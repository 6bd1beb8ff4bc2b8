"""Fixtures for the outcome-risk tests: the real Tongji cohort and the shipped model."""

from __future__ import annotations

from pathlib import Path

import pytest

from dxassist.prognosis.features import TEST_FILE, TRAIN_FILE
from dxassist.prognosis.runtime import PrognosisModel
from tests.conftest import shared_data_dir


@pytest.fixture(scope="session")
def tongji() -> Path:
    path = shared_data_dir() / "clinical" / "tongji-covid19"
    if not (path / TRAIN_FILE).is_file() or not (path / TEST_FILE).is_file():
        pytest.fail(f"Tongji cohort not found at {path}; set DXASSIST_SHARED_DATA")
    return path


@pytest.fixture(scope="session")
def prognosis_model() -> PrognosisModel:
    return PrognosisModel.load()
