"""The database tables (one for now: ``study``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, Enum, Float, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class StudyStatus(StrEnum):
    RECEIVED = "received"
    ANALYSING = "analysing"
    READY = "ready"
    FAILED = "failed"


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


#: Stored as a VARCHAR with a CHECK constraint (not a native PostgreSQL enum), so adding a
#: status later is a plain migration on both databases.
STATUS_TYPE = Enum(
    StudyStatus,
    name="study_status",
    native_enum=False,
    create_constraint=True,
    length=16,
    values_callable=lambda e: [m.value for m in e],
    validate_strings=True,
)


class Study(Base):
    """One received image and, once analysed, the AI read of it."""

    __tablename__ = "study"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    status: Mapped[StudyStatus] = mapped_column(
        STATUS_TYPE, default=StudyStatus.RECEIVED, index=True
    )
    failure_reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)

    # the received file
    original_filename: Mapped[str] = mapped_column(Text)
    file_path: Mapped[str] = mapped_column(Text)  # relative to Settings.data_dir
    sha256: Mapped[str] = mapped_column(String(64))

    # from the image
    modality: Mapped[str | None] = mapped_column(String(16))
    view: Mapped[str | None] = mapped_column(String(16))
    rows: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[int | None] = mapped_column(Integer)
    study_instance_uid: Mapped[str | None] = mapped_column(String(64))
    series_instance_uid: Mapped[str | None] = mapped_column(String(64))
    sop_instance_uid: Mapped[str | None] = mapped_column(String(64))

    # the AI read
    probabilities: Mapped[dict[str, float] | None] = mapped_column(JSON)
    abnormal: Mapped[float | None] = mapped_column(Float)
    priority: Mapped[str | None] = mapped_column(String(16))
    top_finding: Mapped[str | None] = mapped_column(String(64))
    heatmap_path: Mapped[str | None] = mapped_column(Text)  # relative to Settings.data_dir
    warnings: Mapped[list[Any] | None] = mapped_column(JSON)
    model_name: Mapped[str | None] = mapped_column(String(128))
    model_version: Mapped[str | None] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"Study(id={self.id!r}, status={self.status!s}, file={self.original_filename!r})"
