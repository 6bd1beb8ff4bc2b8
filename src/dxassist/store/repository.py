"""Repository functions: every way the rest of dxassist reads or changes a study.

:func:`add_received` only adds and flushes (the caller commits, so it can tie the commit
to the received file); every other function that changes a study commits before it
returns, so what it did is visible to other sessions and workers at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, select, update
from sqlalchemy.orm import Session

from dxassist.store.db import is_postgresql
from dxassist.store.models import (
    Delivery,
    DeliveryStatus,
    Review,
    Study,
    StudyStatus,
    new_id,
    utcnow,
)

#: Worklist order of the triage priorities; studies without one (not analysed yet, or
#: failed analysis, which still need a radiologist's read) come after them.
PRIORITY_RANK = {"urgent": 0, "priority": 1, "routine": 2}


class StudyNotFoundError(LookupError):
    """No study has the given id."""


def add_received(
    session: Session,
    *,
    original_filename: str,
    file_path: str,
    sha256: str,
    study_id: str | None = None,
    modality: str | None = None,
    view: str | None = None,
    rows: int | None = None,
    columns: int | None = None,
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    patient_key: str | None = None,
    patient_age_years: float | None = None,
    patient_sex: str | None = None,
    warnings: Sequence[str] = (),
    source: str = "upload",
    calling_ae: str | None = None,
    skipped_reason: str | None = None,
    quarantine_reason: str | None = None,
) -> Study:
    """Add a study in status ``received`` (or ``skipped``, with `skipped_reason`, for an
    instance that is kept but must not be analysed) and flush it; the caller commits."""
    now = utcnow()
    study = Study(
        id=study_id or new_id(),
        created_at=now,
        updated_at=now,
        status=StudyStatus.SKIPPED
        if skipped_reason
        else StudyStatus.QUARANTINED
        if quarantine_reason
        else StudyStatus.RECEIVED,
        failure_reason=skipped_reason or quarantine_reason,
        source=source,
        calling_ae=calling_ae,
        attempts=0,
        original_filename=original_filename,
        file_path=file_path,
        sha256=sha256,
        modality=modality,
        view=view,
        rows=rows,
        columns=columns,
        study_instance_uid=study_instance_uid,
        series_instance_uid=series_instance_uid,
        sop_instance_uid=sop_instance_uid,
        patient_key=patient_key,
        patient_age_years=patient_age_years,
        patient_sex=patient_sex,
        warnings=list(warnings),
    )
    session.add(study)
    session.flush()
    return study


def get(session: Session, study_id: str) -> Study | None:
    """The study with `study_id`, or None."""
    return session.get(Study, study_id)


def find_by_sha256(session: Session, sha256: str) -> Study | None:
    """The oldest study whose received file has this SHA-256, or None."""
    return session.scalars(
        select(Study).where(Study.sha256 == sha256).order_by(Study.created_at).limit(1)
    ).first()


def find_by_sop_instance_uid(session: Session, sop_instance_uid: str) -> Study | None:
    """The earliest study holding the instance `sop_instance_uid`, or None."""
    return session.scalars(
        select(Study)
        .where(Study.sop_instance_uid == sop_instance_uid)
        .order_by(Study.created_at, Study.id)
        .limit(1)
    ).first()


def all_file_paths(session: Session) -> set[str]:
    """The stored-file paths (relative to the data folder) of every study."""
    return set(session.scalars(select(Study.file_path)))


def _require(session: Session, study_id: str) -> Study:
    study = session.get(Study, study_id)
    if study is None:
        raise StudyNotFoundError(f"no study with id {study_id!r}")
    return study


def claim_next(session: Session) -> Study | None:
    """Atomically move the oldest ``received`` study to ``analysing`` and return it.

    Two sessions calling this at once never get the same study: PostgreSQL locks the row
    with ``SELECT ... FOR UPDATE SKIP LOCKED``; SQLite (one writer at a time) uses a
    single conditional ``UPDATE ... WHERE status = 'received' RETURNING id``. Commits.
    """
    now = utcnow()
    if is_postgresql(session):
        study = session.scalars(
            select(Study)
            .where(Study.status == StudyStatus.RECEIVED)
            .order_by(Study.created_at, Study.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if study is None:
            session.rollback()
            return None
        study.status = StudyStatus.ANALYSING
        study.attempts += 1
        study.updated_at = now
        session.commit()
        return study

    oldest = (
        select(Study.id)
        .where(Study.status == StudyStatus.RECEIVED)
        .order_by(Study.created_at, Study.id)
        .limit(1)
        .scalar_subquery()
    )
    claimed = session.execute(
        update(Study)
        .where(Study.id == oldest, Study.status == StudyStatus.RECEIVED)
        .values(status=StudyStatus.ANALYSING, attempts=Study.attempts + 1, updated_at=now)
        .returning(Study.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    session.commit()
    if claimed is None:
        return None
    return session.get(Study, claimed, populate_existing=True)


def mark_ready(
    session: Session,
    study_id: str,
    *,
    probabilities: Mapping[str, float],
    abnormal: float,
    priority: str,
    top_finding: str,
    heatmap_path: str | None,
    heatmap_finding: str | None = None,
    warnings: Sequence[str],
    model_name: str,
    model_version: str,
    deliver_to: Sequence[str] = (),
) -> Study:
    """Store the AI read and set the study ``ready``; in the same commit, add a pending
    delivery of its results to each destination in `deliver_to` (so a crash between the
    two can never lose one). Commits."""
    study = _require(session, study_id)
    _add_deliveries(session, study_id, deliver_to)
    study.status = StudyStatus.READY
    study.failure_reason = None
    study.probabilities = {k: float(v) for k, v in probabilities.items()}
    study.abnormal = float(abnormal)
    study.priority = str(priority)
    study.top_finding = top_finding
    study.heatmap_path = heatmap_path
    study.heatmap_finding = heatmap_finding
    study.warnings = list(warnings)
    study.model_name = model_name
    study.model_version = model_version
    study.updated_at = utcnow()
    session.commit()
    return study


def mark_failed(session: Session, study_id: str, reason: str) -> Study:
    """Set the study ``failed`` with a reason a user can read. Commits."""
    study = _require(session, study_id)
    study.status = StudyStatus.FAILED
    study.failure_reason = reason
    study.updated_at = utcnow()
    session.commit()
    return study


def requeue_stale_analysing(session: Session) -> int:
    """Put every ``analysing`` study back to ``received``; returns how many. Commits.

    Call it when the (single) worker starts: a study left in ``analysing`` then can only
    be one whose analysis was interrupted by a crash, and it is retried, not dropped.
    """
    result: Any = session.execute(
        update(Study)
        .where(Study.status == StudyStatus.ANALYSING)
        .values(status=StudyStatus.RECEIVED, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return int(result.rowcount or 0)


class StudyNotQuarantinedError(ValueError):
    """Only a quarantined study can be released."""


def release(session: Session, study_id: str) -> Study:
    """Release a quarantined study for analysis (an administrator looked at the pixels and
    found no identifying text, or the site accepts it). Commits."""
    study = _require(session, study_id)
    if study.status != StudyStatus.QUARANTINED:
        raise StudyNotQuarantinedError(
            f"study {study_id} is {study.status}, not quarantined; nothing to release"
        )
    study.status = StudyStatus.RECEIVED
    study.warnings = [
        *(study.warnings or []),
        f"released from quarantine ({study.failure_reason}): check the film for burned-in text",
    ]
    study.failure_reason = None
    study.updated_at = utcnow()
    session.commit()
    return study


class StudyNotRetryableError(ValueError):
    """Only a failed study can be retried."""


def retry(session: Session, study_id: str) -> Study:
    """Put a ``failed`` study back in the queue (status ``received``). Commits."""
    study = _require(session, study_id)
    if study.status != StudyStatus.FAILED:
        raise StudyNotRetryableError(
            f"study {study_id} is {study.status}, not failed; only a failed study is retried"
        )
    study.status = StudyStatus.RECEIVED
    study.failure_reason = None
    study.updated_at = utcnow()
    session.commit()
    return study


@dataclass(frozen=True)
class WorklistQuery:
    """Filters and paging of the worklist. ``reviewed=False`` is the open worklist."""

    statuses: tuple[StudyStatus, ...] = ()
    priorities: tuple[str, ...] = ()
    received_from: datetime | None = None
    received_before: datetime | None = None
    reviewed: bool | None = False
    limit: int | None = 50  # None: no limit
    offset: int = 0


def worklist(session: Session, query: WorklistQuery | None = None) -> tuple[int, list[Study]]:
    """(total matching, one page): urgent before priority before routine, then oldest first.

    Studies without a priority (received, analysing, failed) come after the routine ones.
    """
    q = query or WorklistQuery()
    conditions: list[ColumnElement[bool]] = []
    if q.statuses:
        conditions.append(Study.status.in_(q.statuses))
    else:  # kept-not-analysed (a CT, an SR) and held instances: listed only when asked for
        conditions.append(Study.status.not_in((StudyStatus.SKIPPED, StudyStatus.QUARANTINED)))
    if q.priorities:
        conditions.append(Study.priority.in_(q.priorities))
    if q.received_from is not None:
        conditions.append(Study.created_at >= q.received_from)
    if q.received_before is not None:
        conditions.append(Study.created_at < q.received_before)
    if q.reviewed is True:
        conditions.append(Study.reviewed_at.is_not(None))
    elif q.reviewed is False:
        conditions.append(Study.reviewed_at.is_(None))
    total = int(session.scalar(select(func.count()).select_from(Study).where(*conditions)) or 0)
    rank = case(PRIORITY_RANK, value=Study.priority, else_=len(PRIORITY_RANK))
    page = (
        select(Study)
        .where(*conditions)
        .order_by(rank, Study.created_at, Study.id)
        .limit(q.limit)
        .offset(q.offset)
    )
    return total, list(session.scalars(page))


def list_open(session: Session, limit: int | None = None) -> list[Study]:
    """The open worklist (every unreviewed study), in worklist order."""
    return worklist(session, WorklistQuery(limit=limit))[1]


def first_open(session: Session) -> Study | None:
    """The most urgent open study (the one a radiologist reads next), or None."""
    studies = list_open(session, limit=1)
    return studies[0] if studies else None


class ReviewNotAllowedError(ValueError):
    """The study cannot be reviewed yet (or the review is not valid)."""


def add_review(
    session: Session,
    study_id: str,
    *,
    reviewer_id: str,
    labels: Sequence[str],
    agrees_with_ai: bool | None,
    note: str = "",
) -> Review:
    """Store a review and take the study off the open worklist. Commits.

    A study still waiting for the AI (received, analysing) cannot be reviewed yet; a failed
    one can (the radiologist reads it without the AI).
    """
    study = _require(session, study_id)
    if study.status in (StudyStatus.RECEIVED, StudyStatus.ANALYSING):
        raise ReviewNotAllowedError(
            f"study {study_id} is still {study.status}; review it once the AI read is ready"
        )
    now = utcnow()
    review = Review(
        id=new_id(),
        study_id=study_id,
        reviewer_id=reviewer_id,
        created_at=now,
        labels=list(labels),
        agrees_with_ai=agrees_with_ai,
        note=note,
    )
    session.add(review)
    if study.reviewed_at is None:
        study.reviewed_at = now
    study.updated_at = now
    session.commit()
    return review


def latest_review(session: Session, study_id: str) -> Review | None:
    """The newest review of a study, or None."""
    return session.scalars(
        select(Review)
        .where(Review.study_id == study_id)
        .order_by(Review.created_at.desc(), Review.id.desc())
        .limit(1)
    ).first()


def latest_reviews(session: Session, study_ids: Sequence[str]) -> dict[str, Review]:
    """The newest review of each of `study_ids` that has one."""
    if not study_ids:
        return {}
    out: dict[str, Review] = {}
    rows = session.scalars(
        select(Review)
        .where(Review.study_id.in_(list(study_ids)))
        .order_by(Review.created_at, Review.id)
    )
    for review in rows:  # ascending: the newest overwrites
        out[review.study_id] = review
    return out


def reviewed_studies(session: Session) -> list[tuple[Study, Review]]:
    """Every reviewed study with its newest review, oldest study first."""
    newest = (
        select(Review.study_id, func.max(Review.created_at).label("at"))
        .group_by(Review.study_id)
        .subquery()
    )
    rows = session.execute(
        select(Study, Review)
        .join(Review, Review.study_id == Study.id)
        .join(newest, (newest.c.study_id == Review.study_id) & (newest.c.at == Review.created_at))
        .order_by(Study.created_at, Study.id)
    ).all()
    seen: set[str] = set()
    out: list[tuple[Study, Review]] = []
    for study, review in rows:  # two reviews in the same instant: keep one
        if study.id not in seen:
            seen.add(study.id)
            out.append((study, review))
    return out


def _add_deliveries(session: Session, study_id: str, destinations: Sequence[str]) -> int:
    """Add a pending, due-now delivery to each destination the study has none for; the
    caller commits. Returns how many were added."""
    known = {d.destination for d in deliveries_for(session, study_id)}
    now = utcnow()
    added = 0
    for destination in destinations:
        if destination not in known:
            session.add(
                Delivery(
                    study_id=study_id,
                    destination=destination,
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                    created_at=now,
                    next_attempt_at=now,
                )
            )
            added += 1
    return added


def studies_in_dicom_study(
    session: Session, study_instance_uid: str, patient_key: str | None
) -> list[Study]:
    """Every received instance of one DICOM study: same StudyInstanceUID *and* patient
    (a UID reused by another patient's images is not the same study), oldest first."""
    same_patient = Study.patient_key == patient_key if patient_key else Study.patient_key.is_(None)
    return list(
        session.scalars(
            select(Study)
            .where(Study.study_instance_uid == study_instance_uid, same_patient)
            .order_by(Study.series_instance_uid, Study.created_at, Study.id)
        )
    )


def deliveries_for(session: Session, study_id: str) -> list[Delivery]:
    """The result deliveries of one study, by destination."""
    return list(
        session.scalars(
            select(Delivery).where(Delivery.study_id == study_id).order_by(Delivery.destination)
        )
    )


def adopt_for_delivery(
    session: Session, study_id: str, calling_ae: str | None, destinations: Sequence[str]
) -> int:
    """A study received earlier (e.g. uploaded) has now come over DICOM too: from now on its
    results go back to the hospital. Marks it as a DICOM study and, if it is ready, adds
    the missing deliveries at once (if not, :func:`mark_ready` adds them). Returns how many
    deliveries were added. Commits."""
    study = _require(session, study_id)
    if study.source != "dicom":
        study.source = "dicom"
        study.calling_ae = calling_ae
    added = (
        _add_deliveries(session, study_id, destinations) if study.status == StudyStatus.READY else 0
    )
    session.commit()
    return added


def due_deliveries(session: Session, limit: int = 20) -> list[Delivery]:
    """Pending deliveries whose next attempt is due, the longest-waiting first."""
    return list(
        session.scalars(
            select(Delivery)
            .where(
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.next_attempt_at <= utcnow(),
            )
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(limit)
        )
    )


def next_delivery_due(session: Session) -> datetime | None:
    """When the earliest pending delivery is due (None: nothing pending)."""
    value = session.scalar(
        select(func.min(Delivery.next_attempt_at)).where(Delivery.status == DeliveryStatus.PENDING)
    )
    return value if isinstance(value, datetime) else None


def mark_delivery_sent(session: Session, delivery_id: str) -> None:
    """Record a delivery as sent. Commits."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        return
    delivery.status = DeliveryStatus.SENT
    delivery.attempts += 1
    delivery.sent_at = utcnow()
    delivery.last_error = None
    session.commit()


def mark_delivery_failed(
    session: Session, delivery_id: str, error: str, retry_in: timedelta
) -> None:
    """Record a failed attempt; the delivery stays pending and is retried after
    `retry_in`. Commits."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        return
    delivery.attempts += 1
    delivery.last_error = error
    delivery.next_attempt_at = utcnow() + retry_in
    session.commit()


def postpone_delivery(session: Session, delivery_id: str, note: str, retry_in: timedelta) -> None:
    """Move a delivery's next attempt later without counting an attempt (its destination
    just failed for another delivery). Commits."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return
    delivery.next_attempt_at = utcnow() + retry_in
    delivery.last_error = delivery.last_error or note
    session.commit()


def mark_delivery_given_up(session: Session, delivery_id: str, error: str) -> None:
    """Record that a delivery cannot succeed by retrying (its objects cannot be built);
    it is shown as failed until an admin retries it. Commits."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        return
    delivery.status = DeliveryStatus.FAILED
    delivery.attempts += 1
    delivery.last_error = error
    session.commit()


def retry_deliveries_now(session: Session, study_id: str) -> int:
    """Make every unsent delivery of a study (pending, or failed for good) due now: after
    the PACS or dxassist is fixed. Commits."""
    result: Any = session.execute(
        update(Delivery)
        .where(
            Delivery.study_id == study_id,
            Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.FAILED)),
        )
        .values(next_attempt_at=utcnow(), status=DeliveryStatus.PENDING)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return int(result.rowcount or 0)
