"""The database tables: studies, their reviews and result deliveries, user accounts, web
sessions, API tokens."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class StudyStatus(StrEnum):
    RECEIVED = "received"
    ANALYSING = "analysing"
    READY = "ready"
    FAILED = "failed"
    #: kept but never analysed: not a chest radiograph (CT, an SR, a hand film) received
    #: over DICOM with the ``store`` policy; ``failure_reason`` says why
    SKIPPED = "skipped"
    #: held for an administrator: the pixels may show identifying text (Burned In
    #: Annotation YES, or a modality/class known to burn it in); ``failure_reason`` says why
    QUARANTINED = "quarantined"


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
    #: unique: the same bytes received twice are one study
    sha256: Mapped[str] = mapped_column(String(64), index=True, unique=True)

    # from the image
    modality: Mapped[str | None] = mapped_column(String(16))
    view: Mapped[str | None] = mapped_column(String(16))
    rows: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[int | None] = mapped_column(Integer)
    study_instance_uid: Mapped[str | None] = mapped_column(String(64))
    series_instance_uid: Mapped[str | None] = mapped_column(String(64))
    sop_instance_uid: Mapped[str | None] = mapped_column(String(64), index=True)

    # the AI read
    probabilities: Mapped[dict[str, float] | None] = mapped_column(JSON)
    abnormal: Mapped[float | None] = mapped_column(Float)
    priority: Mapped[str | None] = mapped_column(String(16))
    top_finding: Mapped[str | None] = mapped_column(String(64))
    #: the finding whose evidence the heatmap shows (the likeliest pneumonia finding)
    heatmap_finding: Mapped[str | None] = mapped_column(String(64))
    heatmap_path: Mapped[str | None] = mapped_column(Text)  # relative to Settings.data_dir
    warnings: Mapped[list[Any] | None] = mapped_column(JSON)
    model_name: Mapped[str | None] = mapped_column(String(128))
    model_version: Mapped[str | None] = mapped_column(String(64))

    # from the image, for the training export (no names or identifiers are kept here)
    patient_key: Mapped[str | None] = mapped_column(String(64), index=True)
    patient_age_years: Mapped[float | None] = mapped_column(Float)
    patient_sex: Mapped[str | None] = mapped_column(String(16))
    # the radiologist's read: set when the first review is stored (the open worklist is
    # every study without one); the reviews themselves are in the ``review`` table
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)

    # how it arrived: "upload" (web/API) or "dicom" (C-STORE), and the sender's AE title
    source: Mapped[str] = mapped_column(String(16), default="upload")
    calling_ae: Mapped[str | None] = mapped_column(String(16))

    def __repr__(self) -> str:
        return f"Study(id={self.id!r}, status={self.status!s}, file={self.original_filename!r})"


class Role(StrEnum):
    RADIOLOGIST = "radiologist"
    ADMIN = "admin"
    CLINICIAN = "clinician"
    RESEARCHER = "researcher"


ROLE_TYPE = Enum(
    Role,
    name="user_role",
    native_enum=False,
    create_constraint=True,
    length=16,
    values_callable=lambda e: [m.value for m in e],
    validate_strings=True,
)


class User(Base):
    """A person (or machine owner) who can log in; passwords are stored as argon2id hashes."""

    __tablename__ = "app_user"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[Role] = mapped_column(ROLE_TYPE)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def __repr__(self) -> str:
        return f"User({self.username!r}, role={self.role!s})"


class WebSession(Base):
    """A browser login. Only the SHA-256 of the cookie value is stored."""

    __tablename__ = "web_session"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ApiToken(Base):
    """A bearer token for machines (scripts, gateways). Only its SHA-256 is stored."""

    __tablename__ = "api_token"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the permissions (``dxassist.accounts.permissions.Permission`` values) the token is
    #: limited to, on top of its user's role; None: all of the role's permissions
    scopes: Mapped[list[str] | None] = mapped_column(JSON)


class LoginFailure(Base):
    """A failed login, kept for the rate limit (``dxassist.accounts.ratelimit``) and swept
    once older than its window. The user name is stored as a SHA-256 of its lower-case
    form (it may be a mistyped password or a name that does not exist)."""

    __tablename__ = "login_failure"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    username_hash: Mapped[str] = mapped_column(String(64), index=True)
    client: Mapped[str] = mapped_column(String(64), index=True)


class Review(Base):
    """A radiologist's read of a study: final label(s), agreement with the AI, a note.

    A study may be reviewed more than once (a correction); the newest review counts.
    """

    __tablename__ = "review"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    study_id: Mapped[str] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[str] = mapped_column(ForeignKey("app_user.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: final labels, primary first (see dxassist.cxr.taxonomy.REVIEW_LABELS)
    labels: Mapped[list[str]] = mapped_column(JSON)
    #: None when the study had no AI read to agree with (its analysis failed)
    agrees_with_ai: Mapped[bool | None] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(Text, default="")


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # not sent yet, or the last attempt failed and a retry is due
    SENT = "sent"
    FAILED = "failed"  # the results cannot be built; retrying will not help (see last_error)


DELIVERY_STATUS_TYPE = Enum(
    DeliveryStatus,
    name="delivery_status",
    native_enum=False,
    create_constraint=True,
    length=16,
    values_callable=lambda e: [m.value for m in e],
    validate_strings=True,
)


class Delivery(Base):
    """Sending one study's results (DICOM SR + heatmap Secondary Capture) to one destination.

    Created when the study becomes ready; retried with back-off until it is sent (never
    dropped). ``destination`` is the configured destination as text (``AET@host:port`` or a
    DICOMweb URL).
    """

    __tablename__ = "delivery"
    __table_args__ = (UniqueConstraint("study_id", "destination", name="uq_delivery_dest"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    study_id: Mapped[str] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    destination: Mapped[str] = mapped_column(String(300))
    status: Mapped[DeliveryStatus] = mapped_column(DELIVERY_STATUS_TYPE, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEvent(Base):
    """One entry of the audit trail: who did what to which study, when, from where.

    Append-only (database triggers refuse UPDATE and DELETE) and hash-chained: ``hash`` is
    the SHA-256 of ``prev_hash`` and the canonical JSON of the other fields, ``prev_hash``
    the hash of the entry before (ids are consecutive). See :mod:`dxassist.audit`.
    """

    __tablename__ = "audit_event"

    #: the chain order: 1, 2, 3, ... with no gaps (a gap is a deleted entry)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    #: a username, "system" (the command line), or the calling AE title of a DICOM sender
    actor: Mapped[str] = mapped_column(String(64), index=True)
    actor_role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32), index=True)
    study_id: Mapped[str | None] = mapped_column(String(36), index=True)
    #: short JSON, never patient identifiers
    detail: Mapped[str | None] = mapped_column(Text)
    #: the client's IP address, the DICOM peer, or user@host for the command line
    client: Mapped[str | None] = mapped_column(String(128))
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
