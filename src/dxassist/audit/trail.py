"""The audit trail: an append-only, hash-chained record of who saw or changed what.

Every read or write of patient-level data and every security event (login, failed login,
account changes) appends one :class:`~dxassist.store.models.AuditEvent`. Entry ``n`` stores
``prev_hash`` = the hash of entry ``n - 1`` (64 zeros for entry 1) and
``hash = sha256(prev_hash || canonical JSON of its other fields)``, so editing, deleting or
reordering entries breaks the chain, which :func:`verify` finds. Database triggers refuse
UPDATE and DELETE (migration 0005). Appends are serialised (a process-wide lock and, on
PostgreSQL, a transaction-level advisory lock; ``id`` and ``prev_hash`` are unique, so two
writers that still race are told by the database and the loser retries).

If an entry cannot be written, :class:`AuditUnavailableError` is raised: the web app turns
it into 503, so patient data is not handed out unaudited.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from dxassist.errors import InputError, StoreUnavailableError
from dxassist.store.db import is_postgresql
from dxassist.store.models import AuditEvent, utcnow

#: prev_hash of the first entry
GENESIS = "0" * 64
#: the key of the PostgreSQL advisory lock that serialises appends (any fixed bigint)
ADVISORY_LOCK_KEY = 0x6478_6175_6474  # "dxaudt"
#: how often an append is retried when another process took the same id first
APPEND_ATTEMPTS = 50
#: longest text kept of one value in ``detail``
MAX_DETAIL_VALUE = 200
#: identical worklist views (same user, client, query) are recorded at most this often:
#: the worklist page polls every few seconds
WORKLIST_INTERVAL_S = 300.0

_append_lock = threading.Lock()


class Action(StrEnum):
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    WORKLIST_VIEW = "worklist_view"
    STUDY_VIEW = "study_view"
    IMAGE_VIEW = "image_view"
    HEATMAP_VIEW = "heatmap_view"
    FHIR_VIEW = "fhir_view"
    STUDY_UPLOAD = "study_upload"
    DICOM_RECEIVE = "dicom_receive"
    REVIEW = "review"
    RETRY = "retry"
    RESULTS_RESEND = "results_resend"
    STUDY_RELEASE = "study_release"
    EXPORT_TRAINING = "export_training"
    USER_ADD = "user_add"
    USER_ROLE_CHANGE = "user_role_change"
    USER_PASSWD = "user_passwd"
    USER_DISABLE = "user_disable"
    USER_ENABLE = "user_enable"
    USER_UNLOCK = "user_unlock"
    EXPORT_RESEARCH = "export_research"
    TOKEN_CREATE = "token_create"
    TOKEN_REVOKE = "token_revoke"
    AUDIT_VIEW = "audit_view"


class AuditUnavailableError(StoreUnavailableError):
    """An audit entry could not be written, so the action it records must not happen."""


def _clean(value: str | None, limit: int) -> str | None:
    """One printable line of at most `limit` characters."""
    if value is None:
        return None
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))
    return out[:limit]


def _detail_json(detail: Mapping[str, Any] | None) -> str | None:
    if not detail:
        return None
    short: dict[str, Any] = {}
    for key, value in detail.items():
        if isinstance(value, str):
            value = _clean(value, MAX_DETAIL_VALUE)
        elif isinstance(value, (list, tuple)):
            value = [_clean(v, MAX_DETAIL_VALUE) if isinstance(v, str) else v for v in value]
        short[str(key)] = value
    return json.dumps(short, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _utc(at: datetime) -> datetime:
    """SQLite returns naive datetimes; they are UTC."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def canonical(event: AuditEvent) -> str:
    """The canonical JSON of an entry's fields other than its hashes."""
    fields = {
        "id": event.id,
        "at": _utc(event.at).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": event.actor,
        "actor_role": event.actor_role,
        "action": event.action,
        "study_id": event.study_id,
        "detail": event.detail,
        "client": event.client,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, event: AuditEvent) -> str:
    """sha256(prev_hash || canonical JSON), hex."""
    return hashlib.sha256((prev_hash + canonical(event)).encode("utf-8")).hexdigest()


def record(
    session: Session,
    action: Action | str,
    *,
    actor: str,
    actor_role: str | None = None,
    study_id: str | None = None,
    detail: Mapping[str, Any] | None = None,
    client: str | None = None,
) -> AuditEvent:
    """Append one entry and commit (the session's pending work is committed with it).

    Raises :class:`AuditUnavailableError` if it cannot be written."""
    action = Action(action)
    with _append_lock:
        for _attempt in range(APPEND_ATTEMPTS):
            try:
                if is_postgresql(session):
                    session.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
                    )
                last = session.execute(
                    select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
                ).first()
                prev_id, prev_hash = (last[0], last[1]) if last is not None else (0, GENESIS)
                event = AuditEvent(
                    id=prev_id + 1,
                    # microseconds survive both databases; the hash is over this exact value
                    at=utcnow(),
                    actor=_clean(actor, 64) or "",
                    actor_role=_clean(actor_role, 16),
                    action=action.value,
                    study_id=_clean(study_id, 36),
                    detail=_detail_json(detail),
                    client=_clean(client, 128),
                    prev_hash=prev_hash,
                )
                event.hash = entry_hash(prev_hash, event)
                session.add(event)
                session.commit()
                return event
            except IntegrityError:  # another process appended the same id first: again
                session.rollback()
                time.sleep(random.uniform(0.001, 0.02))
            except SQLAlchemyError as exc:
                session.rollback()
                raise AuditUnavailableError(
                    f"the audit trail cannot be written ({type(exc).__name__}); nothing was "
                    "shown or changed. Tell the administrator (check the database and "
                    "`dxassist audit verify`)"
                ) from exc
    raise AuditUnavailableError(
        f"the audit trail cannot be written (no free entry after {APPEND_ATTEMPTS} tries); "
        "nothing was shown or changed. Try again"
    )


@dataclass(frozen=True)
class Verification:
    """What :func:`verify` found: how many entries, the head, and the first problem."""

    count: int
    head_id: int
    head_hash: str
    problem: str | None = None
    bad_id: int | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


def _rows(session: Session, batch: int = 1000) -> Iterator[AuditEvent]:
    after = 0
    while True:
        rows = list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.id > after)
                .order_by(AuditEvent.id)
                .limit(batch)
                # what the database holds now, not what this session cached
                .execution_options(populate_existing=True)
            )
        )
        if not rows:
            return
        after = rows[-1].id
        for row in rows:
            yield row
            session.expunge(row)  # a long trail is walked in constant memory


def verify(session: Session, expect: tuple[int, str] | None = None) -> Verification:
    """Walk the chain from entry 1. Stops at the first entry that is out of place (a gap
    in the ids: deleted), whose link does not match the hash before it (edited or
    reordered before it), or whose content does not match its own hash (edited).

    `expect` = (id, hash) written down earlier (``--print-head``): the entry must still be
    there with that hash (this catches a rewritten, rehashed table or removed tail)."""
    count, prev_id, prev_hash = 0, 0, GENESIS
    for row in _rows(session):
        expected_id = prev_id + 1
        if row.id != expected_id:
            missing = (
                f"entry {expected_id}"
                if row.id == expected_id + 1
                else f"entries {expected_id} to {row.id - 1}"
            )
            return Verification(
                count,
                prev_id,
                prev_hash,
                f"entry {row.id} follows entry {prev_id}: {missing} missing (deleted)",
                expected_id,
            )
        if row.prev_hash != prev_hash:
            return Verification(
                count,
                prev_id,
                prev_hash,
                f"entry {row.id}: its link (prev_hash) does not match the hash of entry "
                f"{prev_id}: entry {prev_id} was edited and rehashed, or entries were "
                "reordered or replaced",
                row.id,
            )
        if entry_hash(row.prev_hash, row) != row.hash:
            return Verification(
                count,
                prev_id,
                prev_hash,
                f"entry {row.id}: its content does not match its hash (edited)",
                row.id,
            )
        count, prev_id, prev_hash = count + 1, row.id, row.hash
        if expect is not None and row.id == expect[0] and row.hash != expect[1]:
            return Verification(
                count,
                prev_id,
                prev_hash,
                f"entry {row.id}: its hash is not the {expect[1][:16]}... written down "
                "earlier: the trail was rewritten",
                row.id,
            )
    if expect is not None and prev_id < expect[0]:
        return Verification(
            count,
            prev_id,
            prev_hash,
            f"the trail ends at entry {prev_id}, but entry {expect[0]} was written down "
            "earlier: entries at the end were deleted",
            prev_id + 1,
        )
    return Verification(count, prev_id, prev_hash)


def parse_when(value: str | None, name: str, *, end: bool = False) -> datetime | None:
    """A date (YYYY-MM-DD; as an end bound it includes that day) or an ISO 8601
    date-time (naive = UTC); None for no bound. Raises :class:`InputError`."""
    if value is None or not value.strip():
        return None
    raw = value.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            when = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return when + timedelta(days=1) if end and day != date.max else when
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise InputError(
            f"{name}={value!r} is not a date (YYYY-MM-DD) or ISO 8601 date-time"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def parse_action(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        return Action(value.strip().lower()).value
    except ValueError:
        raise InputError(
            f"action={value!r} is unknown; use one of: " + ", ".join(a.value for a in Action)
        ) from None


#: most entries one listing returns
MAX_LIST = 1000


@dataclass(frozen=True)
class AuditQuery:
    user: str | None = None
    study: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100


def events(session: Session, query: AuditQuery) -> list[AuditEvent]:
    """Entries matching `query`, newest first."""
    if not 1 <= query.limit <= MAX_LIST:
        raise InputError(f"limit={query.limit} is out of range; use 1 to {MAX_LIST}")
    stmt = select(AuditEvent)
    if query.user:
        stmt = stmt.where(AuditEvent.actor == query.user)
    if query.study:
        stmt = stmt.where(AuditEvent.study_id == query.study)
    if query.action:
        stmt = stmt.where(AuditEvent.action == query.action)
    if query.since is not None:
        stmt = stmt.where(AuditEvent.at >= query.since)
    if query.until is not None:
        stmt = stmt.where(AuditEvent.at < query.until)
    return list(session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(query.limit)))


def as_dict(event: AuditEvent) -> dict[str, Any]:
    """An entry as JSON (detail parsed back into an object when it is JSON)."""
    detail: Any = event.detail
    if detail is not None:
        with contextlib.suppress(ValueError):
            detail = json.loads(detail)
    return {
        "id": event.id,
        "at": _utc(event.at).isoformat().replace("+00:00", "Z"),
        "actor": event.actor,
        "actor_role": event.actor_role,
        "action": event.action,
        "study_id": event.study_id,
        "detail": detail,
        "client": event.client,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


class Throttle:
    """Remembers when a key was last recorded; :meth:`due` says whether to record again."""

    def __init__(self, interval_s: float, max_keys: int = 10_000) -> None:
        self.interval_s = interval_s
        self.max_keys = max_keys
        self._last: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def due(self, key: tuple[str, ...]) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval_s:
                return False
            if len(self._last) >= self.max_keys:
                self._last.clear()
            self._last[key] = now
            return True

    def forget(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._last.pop(key, None)
