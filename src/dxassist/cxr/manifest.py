"""Read a training/evaluation manifest (the format of shared/data/cxr/manifest.csv).

Columns: path (relative to the image root), dataset, patient_id, label, view, age_group,
split. A hospital exports its own data in the same format to retrain and validate.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from dxassist.cxr.taxonomy import EXCLUDED_LABELS, FINDINGS, PNEUMONIA_UNTYPED
from dxassist.errors import InputError

REQUIRED_COLUMNS = ("path", "dataset", "patient_id", "label", "view", "age_group", "split")
NON_FRONTAL_VIEWS = frozenset({"LATERAL", "LL", "RL", "LAT"})


@dataclass(frozen=True)
class ManifestRow:
    path: Path
    dataset: str
    patient_id: str
    label: str
    view: str
    age_group: str
    split: str

    @property
    def target(self) -> int:
        """Index into FINDINGS, or -1 for pneumonia of unrecorded type."""
        if self.label == PNEUMONIA_UNTYPED:
            return -1
        return FINDINGS.index(self.label)


def read_manifest(
    manifest: Path, image_root: Path | None = None, *, frontal_only: bool = True
) -> list[ManifestRow]:
    """Rows usable for training/evaluation: known labels, frontal views (by default)."""
    root = image_root if image_root is not None else manifest.parent
    known = set(FINDINGS) | {PNEUMONIA_UNTYPED} | set(EXCLUDED_LABELS)
    rows: list[ManifestRow] = []
    with manifest.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(
                f"{manifest}: missing column(s) {', '.join(missing)}; a manifest needs "
                f"{', '.join(REQUIRED_COLUMNS)}"
            )
        for line_no, raw in enumerate(reader, start=2):
            label = raw["label"].strip()
            if label not in known:
                raise InputError(
                    f"{manifest} line {line_no}: unknown label {label!r}; use one of "
                    f"{', '.join(sorted(known))}"
                )
            if label in EXCLUDED_LABELS:
                continue
            view = raw["view"].strip().upper()
            if frontal_only and view in NON_FRONTAL_VIEWS:
                continue
            rows.append(
                ManifestRow(
                    path=root / raw["path"],
                    dataset=raw["dataset"].strip(),
                    patient_id=raw["patient_id"].strip(),
                    label=label,
                    view=view,
                    age_group=raw["age_group"].strip(),
                    split=raw["split"].strip(),
                )
            )
    return rows
