"""Repository functions: every way the rest of dxassist reads or changes a study.

:func:`add_received` only adds and flushes (the caller commits, so it can tie the commit
to the received file); every other function that changes a study commits before it
returns, so what it did is visible to other sessions and workers at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from dxassist.store.db import is_postgresql
from dxassist.store.models import Study, StudyStatus, new_id, utcnow

#: Worklist order of the triage priorities; studies without one yet come after them.
PRIORITY_RANK = {"urgent": 0, "priority": 1, "routine": 2}
#: Statuses that are on the worklist: everything not yet failed (no review step exists yet).
OPEN_STATUSES = (StudyStatus.RECEIVED, StudyStatus.ANALYSING, StudyStatus.READY)


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
    warnings: Sequence[str] = (),
) -> Study:
    """Add a study in status ``received`` and flush it; the caller commits."""
    now = utcnow()
    study = Study(
        id=study_id or new_id(),
        created_at=now,
        updated_at=now,
        status=StudyStatus.RECEIVED,
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
        warnings=list(warnings),
    )
    session.add(study)
    session.flush()
    return study


def get(session: Session, study_id: str) -> Study | None:
    """The study with `study_id`, or None."""
    return session.get(Study, study_id)


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
    warnings: Sequence[str],
    model_name: str,
    model_version: str,
) -> Study:
    """Store the AI read and set the study ``ready``. Commits."""
    study = _require(session, study_id)
    study.status = StudyStatus.READY
    study.failure_reason = None
    study.probabilities = {k: float(v) for k, v in probabilities.items()}
    study.abnormal = float(abnormal)
    study.priority = str(priority)
    study.top_finding = top_finding
    study.heatmap_path = heatmap_path
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


def list_open(session: Session, limit: int | None = None) -> list[Study]:
    """The worklist: open studies, urgent before priority before routine, then oldest first.

    Studies not yet analysed (no priority) come after the routine ones.
    """
    rank = case(PRIORITY_RANK, value=Study.priority, else_=len(PRIORITY_RANK))
    query = (
        select(Study)
        .where(Study.status.in_(OPEN_STATUSES))
        .order_by(rank, Study.created_at, Study.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))
