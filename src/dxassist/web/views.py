"""How a study is shown over the API: plain JSON-ready dicts built from store rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dxassist.store.models import Delivery, Review, Study, StudyStatus, User
from dxassist.timefmt import aware, iso

API = "/api/v1"


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
        "fhir": f"{base}/fhir" if ready else None,
        "release": f"{base}/release" if study.status == StudyStatus.QUARANTINED else None,
    }


def patient_label(study: Study) -> str | None:
    """A short pseudonym for the patient (from the site's keyed hash), e.g. ``P-3fa2c1d9``.

    dxassist does not keep names or Patient IDs; films of one patient share this label.
    """
    return f"P-{study.patient_key[:8]}" if study.patient_key else None


def summary(
    study: Study, now: datetime | None = None, review: Review | None = None
) -> dict[str, Any]:
    """One worklist row (with the newest review's labels, if one is given)."""
    now = now or datetime.now(UTC)
    created = aware(study.created_at)
    assert created is not None
    return {
        "id": study.id,
        "status": str(study.status),
        "received_at": iso(study.created_at),
        "age_seconds": max(0, round((now - created).total_seconds())),
        "original_filename": study.original_filename,
        "patient": {
            "pseudonym": patient_label(study),
            "age_years": study.patient_age_years,
            "sex": study.patient_sex,
        },
        "modality": study.modality,
        "view": study.view,
        "received_via": study.source,
        "calling_ae": study.calling_ae,
        "priority": study.priority,
        "abnormal": study.abnormal,
        "top_finding": study.top_finding,
        "failure_reason": study.failure_reason,
        "n_warnings": len(study.warnings or []),
        "reviewed_at": iso(study.reviewed_at),
        "review_labels": list(review.labels) if review is not None else None,
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


def delivery_view(delivery: Delivery) -> dict[str, Any]:
    return {
        "destination": delivery.destination,
        "status": str(delivery.status),
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "next_attempt_at": iso(delivery.next_attempt_at)
        if str(delivery.status) == "pending"
        else None,
        "sent_at": iso(delivery.sent_at),
    }


def detail(
    study: Study,
    review: dict[str, Any] | None,
    thresholds: dict[str, float] | None = None,
    *,
    same_study: list[Study] | None = None,
    deliveries: list[Delivery] | None = None,
) -> dict[str, Any]:
    """Everything about one study. `thresholds` are the triage thresholds of the model
    that read it (None when that model is not the one loaded now)."""
    ai = None
    if study.status == StudyStatus.READY and study.probabilities is not None:
        ai = {
            "model": {"name": study.model_name, "version": study.model_version},
            "probabilities": study.probabilities,
            "abnormal": study.abnormal,
            "priority": study.priority,
            "thresholds": thresholds,
            "top_finding": study.top_finding,
            "heatmap_finding": study.heatmap_finding,
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
        # the other images of the same DICOM study (same StudyInstanceUID)
        "study_images": [
            {
                "id": s.id,
                "status": str(s.status),
                "modality": s.modality,
                "view": s.view,
                "series_instance_uid": s.series_instance_uid,
                "page": f"/studies/{s.id}",
            }
            for s in (same_study or [])
        ],
        "deliveries": [delivery_view(d) for d in (deliveries or [])],
    }
