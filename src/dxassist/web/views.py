"""How a study is shown over the API: plain JSON-ready dicts built from store rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dxassist.store.models import Review, Study, StudyStatus, User

API = "/api/v1"


def aware(dt: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes for timezone-aware columns; they are UTC."""
    if dt is None:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def iso(dt: datetime | None) -> str | None:
    value = aware(dt)
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def study_urls(study: Study) -> dict[str, str | None]:
    base = f"{API}/studies/{study.id}"
    ready = study.status == StudyStatus.READY
    return {
        "self": base,
        "page": f"/studies/{study.id}",
        "image": f"{base}/image.png",
        "heatmap": f"{base}/heatmap.png" if ready else None,
        "heatmap_layer": f"{base}/heatmap-layer.png" if ready else None,
        "review": f"{base}/review",
        "retry": f"{base}/retry" if study.status == StudyStatus.FAILED else None,
    }


def summary(study: Study, now: datetime | None = None) -> dict[str, Any]:
    """One worklist row."""
    now = now or datetime.now(UTC)
    created = aware(study.created_at)
    assert created is not None
    return {
        "id": study.id,
        "status": str(study.status),
        "received_at": iso(study.created_at),
        "age_seconds": max(0, round((now - created).total_seconds())),
        "original_filename": study.original_filename,
        "modality": study.modality,
        "view": study.view,
        "priority": study.priority,
        "abnormal": study.abnormal,
        "top_finding": study.top_finding,
        "failure_reason": study.failure_reason,
        "n_warnings": len(study.warnings or []),
        "reviewed_at": iso(study.reviewed_at),
        "urls": study_urls(study),
    }


def review_view(review: Review, reviewer: User | None) -> dict[str, Any]:
    return {
        "labels": list(review.labels),
        "agrees_with_ai": review.agrees_with_ai,
        "note": review.note,
        "reviewer": reviewer.username if reviewer is not None else None,
        "reviewed_at": iso(review.created_at),
    }


def detail(study: Study, review: dict[str, Any] | None) -> dict[str, Any]:
    """Everything about one study."""
    ai = None
    if study.status == StudyStatus.READY and study.probabilities is not None:
        ai = {
            "model": {"name": study.model_name, "version": study.model_version},
            "probabilities": study.probabilities,
            "abnormal": study.abnormal,
            "priority": study.priority,
            "top_finding": study.top_finding,
        }
    return {
        **summary(study),
        "updated_at": iso(study.updated_at),
        "attempts": study.attempts,
        "sha256": study.sha256,
        "image": {
            "modality": study.modality,
            "view": study.view,
            "rows": study.rows,
            "columns": study.columns,
            "patient_age_years": study.patient_age_years,
            "study_instance_uid": study.study_instance_uid,
            "series_instance_uid": study.series_instance_uid,
            "sop_instance_uid": study.sop_instance_uid,
        },
        "ai": ai,
        "warnings": list(study.warnings or []),
        "review": review,
    }
