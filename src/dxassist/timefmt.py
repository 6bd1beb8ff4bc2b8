"""Datetimes as dxassist shows them: UTC, ISO 8601 with a ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime


def aware(dt: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes for timezone-aware columns; they are UTC."""
    if dt is None:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def iso(dt: datetime | None) -> str | None:
    """``2026-12-03T21:41:16.470672Z`` (None stays None)."""
    value = aware(dt)
    return value.isoformat().replace("+00:00", "Z") if value is not None else None
