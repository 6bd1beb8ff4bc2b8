"""All settings in one typed place, read from the environment (``DXASSIST_*``).

``DXASSIST_DATA_DIR``
    Where received files, heatmaps and the SQLite database live (default
    ``./dxassist-data``).
``DXASSIST_DATABASE_URL``
    SQLAlchemy URL of the database (default ``sqlite:///<data_dir>/dxassist.db``);
    e.g. ``postgresql+psycopg://user@host/dxassist`` switches to PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = Path("dxassist-data")


@dataclass(frozen=True)
class Settings:
    """The service's settings; build one with :meth:`from_env` or directly in tests."""

    data_dir: Path
    database_url: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``DXASSIST_*`` variables (``os.environ`` unless given)."""
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("DXASSIST_DATA_DIR") or DEFAULT_DATA_DIR)
        database_url = env.get("DXASSIST_DATABASE_URL") or default_database_url(data_dir)
        return cls(data_dir=data_dir, database_url=database_url)

    @classmethod
    def for_data_dir(cls, data_dir: Path, database_url: str | None = None) -> Settings:
        """Settings for `data_dir`, with the SQLite database inside it unless a URL is given."""
        return cls(data_dir=data_dir, database_url=database_url or default_database_url(data_dir))


def default_database_url(data_dir: Path) -> str:
    """``sqlite:///<data_dir>/dxassist.db`` (absolute, so the working folder does not matter)."""
    return f"sqlite:///{data_dir.absolute() / 'dxassist.db'}"
