from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from dxassist.config import Settings
from dxassist.store import Base, make_engine, upgrade_to_head


def test_upgrade_applies_to_empty_db_and_is_idempotent(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert "study" not in inspect(engine).get_table_names()
        upgrade_to_head(db_url)
        upgrade_to_head(db_url)  # second run: nothing to do, no error
        assert {"study", "alembic_version"} <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
            assert [v for (v,) in versions] == ["0005"]
            # the migration creates exactly what the models declare
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            assert diff == []
    finally:
        engine.dispose()


def test_connection_setup(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            else:  # each PostgreSQL test runs in its own throw-away schema
                assert str(conn.execute(text("SELECT current_schema()")).scalar()).startswith("t_")
    finally:
        engine.dispose()


def test_settings_from_env() -> None:
    s = Settings.from_env({"DXASSIST_DATA_DIR": "/srv/dx"})
    assert str(s.data_dir) == "/srv/dx"
    assert s.database_url == "sqlite:////srv/dx/dxassist.db"
    pg = "postgresql+psycopg://u@h/db"
    assert Settings.from_env({"DXASSIST_DATABASE_URL": pg}).database_url == pg
    assert Settings.from_env({}).data_dir.name == "dxassist-data"
