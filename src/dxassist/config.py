"""All settings in one typed place, read from the environment (``DXASSIST_*``).

``DXASSIST_DATA_DIR``
    Where received files, heatmaps and the SQLite database live (default
    ``./dxassist-data``).
``DXASSIST_DATABASE_URL``
    SQLAlchemy URL of the database (default ``sqlite:///<data_dir>/dxassist.db``);
    e.g. ``postgresql+psycopg://user@host/dxassist`` switches to PostgreSQL.
``DXASSIST_SITE``
    Name of this site, written as ``dataset`` in the training export (default ``local``).
``DXASSIST_MAX_UPLOAD_MB``
    Largest file accepted by upload, in MB (default 200; the largest chest CR/DX files are
    under 60 MB uncompressed).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dxassist.errors import DxAssistError

DEFAULT_DATA_DIR = Path("dxassist-data")
DEFAULT_SITE = "local"
DEFAULT_MAX_UPLOAD_MB = 200.0


class SettingsError(DxAssistError):
    """A ``DXASSIST_*`` variable holds a value that cannot be used."""

    exit_code = 2


@dataclass(frozen=True)
class Settings:
    """The service's settings; build one with :meth:`from_env` or directly in tests."""

    data_dir: Path
    database_url: str
    site: str = DEFAULT_SITE
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``DXASSIST_*`` variables (``os.environ`` unless given).

        Raises :class:`SettingsError` naming the variable when a value cannot be used.
        """
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("DXASSIST_DATA_DIR") or DEFAULT_DATA_DIR)
        database_url = env.get("DXASSIST_DATABASE_URL") or default_database_url(data_dir)
        site = (env.get("DXASSIST_SITE") or DEFAULT_SITE).strip() or DEFAULT_SITE
        raw_mb = env.get("DXASSIST_MAX_UPLOAD_MB") or str(DEFAULT_MAX_UPLOAD_MB)
        try:
            max_upload_mb = float(raw_mb)
        except ValueError:
            max_upload_mb = float("nan")
        if not max_upload_mb > 0 or max_upload_mb == float("inf"):
            raise SettingsError(
                f"DXASSIST_MAX_UPLOAD_MB={raw_mb!r} is not a positive number of megabytes"
            )
        return cls(
            data_dir=data_dir, database_url=database_url, site=site, max_upload_mb=max_upload_mb
        )

    @classmethod
    def for_data_dir(cls, data_dir: Path, database_url: str | None = None) -> Settings:
        """Settings for `data_dir`, with the SQLite database inside it unless a URL is given."""
        return cls(data_dir=data_dir, database_url=database_url or default_database_url(data_dir))


def default_database_url(data_dir: Path) -> str:
    """``sqlite:///<data_dir>/dxassist.db`` (absolute, so the working folder does not matter)."""
    return f"sqlite:///{data_dir.absolute() / 'dxassist.db'}"
