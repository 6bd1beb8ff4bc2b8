"""The store: SQLAlchemy models, repository functions and Alembic migrations.

SQLite by default, PostgreSQL by URL. Knows nothing of HTTP, the model or images.
"""

from __future__ import annotations

from dxassist.store.db import make_engine, make_session_factory, session_factory_for
from dxassist.store.migrate import upgrade_to_head
from dxassist.store.models import Base, Study, StudyStatus

__all__ = [
    "Base",
    "Study",
    "StudyStatus",
    "make_engine",
    "make_session_factory",
    "session_factory_for",
    "upgrade_to_head",
]
