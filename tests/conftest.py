"""Shared fixtures: where the real data lives, the real CR from pydicom-data, and
databases: every store/web test runs against a SQLite file and a fresh PostgreSQL schema.

PostgreSQL is at $DXASSIST_TEST_POSTGRES_URL (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``); each test gets its own schema,
dropped afterwards. Without a reachable server the PostgreSQL runs are skipped (with the
reason in the summary), except under CI, where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from dxassist.config import Settings, default_database_url
from dxassist.cxr.runtime import CxrModel
from dxassist.store import make_engine, make_session_factory, upgrade_to_head

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


POSTGRES_URL = os.environ.get(
    "DXASSIST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database (no tables yet)."""
    if request.param == "sqlite":
        yield default_database_url(tmp_path / "data")
        return
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # no server here: say so; in CI (which has one) it is a failure
        admin.dispose()
        reason = f"PostgreSQL not reachable at {POSTGRES_URL}: {type(exc).__name__}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings for a migrated database and an empty data folder."""
    upgrade_to_head(db_url)
    return Settings(data_dir=tmp_path / "data", database_url=db_url)


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.database_url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as s:
        yield s


@pytest.fixture(scope="session")
def model() -> CxrModel:
    return CxrModel.load()


@pytest.fixture(scope="session")
def nih_png(shared_data: Path) -> Path:
    pngs = sorted((shared_data / "cxr" / "nih").glob("*.png"))
    if not pngs:
        pytest.fail(f"no NIH PNG in {shared_data / 'cxr' / 'nih'}")
    return pngs[0]
