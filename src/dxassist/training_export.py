"""Reviewed studies as a training manifest: the feedback loop from the ward to the model.

The CSV has the columns of ``shared/data/cxr/manifest.csv`` (path, dataset, patient_id,
label, view, age_group, split), so ``dxassist train --manifest labels.csv`` retrains on it
and ``dxassist evaluate`` validates on it, followed by columns that say where each row
came from. ``path`` is the absolute path of the received file in the data folder.
``patient_id`` is the site's pseudonymous patient key (keyed hash of the DICOM Patient ID),
or ``study-<id>`` when the file carried none (PNG/JPEG): such films cannot be linked, so
each counts as its own patient. ``split`` is fixed per patient from that key (70 % train,
15 % val, 15 % test), so a patient's films never straddle splits and an export made
later keeps every earlier patient in the same split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

from dxassist.config import Settings
from dxassist.store.models import Review, Study
from dxassist.timefmt import iso

EXPORT_COLUMNS = (
    "path",
    "dataset",
    "patient_id",
    "label",
    "view",
    "age_group",
    "split",
    "study_id",
    "labels",
    "ai_top_finding",
    "agrees_with_ai",
    "reviewed_at",
)
#: Share of patients (in percent) in train, then val; the rest is test.
SPLIT_PERCENT = (70, 15)
#: Age (years) from which a patient counts as an adult, as in the shared manifest.
ADULT_FROM_YEARS = 18.0


def split_for(patient_id: str) -> str:
    """train / val / test, fixed by a hash of the patient id."""
    bucket = int(hashlib.sha256(patient_id.encode("utf-8")).hexdigest()[:8], 16) % 100
    if bucket < SPLIT_PERCENT[0]:
        return "train"
    if bucket < SPLIT_PERCENT[0] + SPLIT_PERCENT[1]:
        return "val"
    return "test"


def age_group(age_years: float | None) -> str:
    if age_years is None:
        return "unknown"
    return "adult" if age_years >= ADULT_FROM_YEARS else "pediatric"


def export_rows(
    settings: Settings, reviewed: Iterable[tuple[Study, Review]]
) -> Iterator[dict[str, Any]]:
    """One manifest row per reviewed study (its newest review's primary label)."""
    for study, review in reviewed:
        if str(study.status) == "quarantined":  # its pixels may identify: never exported
            continue
        patient = study.patient_key or f"study-{study.id}"
        yield {
            "path": str((settings.data_dir / study.file_path).absolute()),
            "dataset": settings.site,
            "patient_id": patient,
            "label": review.labels[0],
            "view": study.view or "",
            "age_group": age_group(study.patient_age_years),
            "split": split_for(patient),
            "study_id": study.id,
            "labels": ";".join(review.labels),
            "ai_top_finding": study.top_finding or "",
            "agrees_with_ai": {True: "yes", False: "no", None: "no AI read"}[review.agrees_with_ai],
            "reviewed_at": iso(review.created_at),
        }
