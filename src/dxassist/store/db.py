"""Engines and sessions from a database URL.

SQLite gets WAL journalling (readers do not block the writer), foreign keys on and a
busy timeout, so the in-process worker and request handlers can share one file.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

#: How long a SQLite connection waits for another writer before giving up, in seconds.
SQLITE_BUSY_TIMEOUT_S = 30

_factories: dict[str, sessionmaker[Session]] = {}
_factories_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # REPLACE deletes the row it replaces: with this, that delete fires the audit
        # table's no-DELETE trigger too (otherwise INSERT OR REPLACE rewrites an entry)
        cursor.execute("PRAGMA recursive_triggers=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for `url`; for a SQLite file its folder is created if missing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (repository functions commit)."""
    return sessionmaker(engine, expire_on_commit=False)


def session_factory_for(url: str) -> sessionmaker[Session]:
    """One shared session factory (and engine) per URL for this process."""
    with _factories_lock:
        factory = _factories.get(url)
        if factory is None:
            factory = make_session_factory(make_engine(url))
            _factories[url] = factory
        return factory


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def dispose_factory_for(url: str) -> None:
    """Close the shared engine of `url` (its pooled connections) and forget it."""
    with _factories_lock:
        factory = _factories.pop(url, None)
    if factory is not None:
        bind = factory.kw.get("bind")
        if isinstance(bind, Engine):
            bind.dispose()
