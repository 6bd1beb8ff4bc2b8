"""Shared fixtures: where the real data lives, the real CR from pydicom-data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """../shared/data beside the checkout (as in CI), or $DXASSIST_SHARED_DATA."""
    env = os.environ.get("DXASSIST_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not (path / "cxr" / "manifest.csv").is_file():
        pytest.fail(f"shared data not found at {path}; set DXASSIST_SHARED_DATA")
    return path


@pytest.fixture(scope="session")
def rg1_uncr() -> Path:
    from pydicom.data import get_testdata_file

    return Path(str(get_testdata_file("RG1_UNCR.dcm")))


@pytest.fixture(scope="session")
def rg1_j2kr() -> Path:
    from pydicom.data import get_testdata_file

    return Path(str(get_testdata_file("RG1_J2KR.dcm")))
