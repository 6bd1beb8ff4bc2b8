"""The one place where the rooms are composed: file → Radiograph → read → report.

imaging.load_file → cxr.runtime (preprocess, ONNX, CAM) → triage → heatmap PNG
                  → warnings (view, size, age, burned-in text) → ReadResult
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dxassist.cxr.heatmap import write_overlay
from dxassist.cxr.runtime import CxrModel, ModelInfo, Reading
from dxassist.errors import ModelError, NotARadiographError
from dxassist.imaging import load_file
from dxassist.imaging.radiograph import Radiograph

#: Radiographs with a shorter side below this are flagged: detail is lost.
MIN_SIDE_PX = 256
#: Images with a shorter side below this are refused: there is no chest to read in them.
MIN_READABLE_SIDE_PX = 32
#: Longest heatmap file stem, in bytes (file names are limited to 255 bytes).
MAX_STEM_BYTES = 200
#: Images whose grey levels span less than one 16-bit step are refused as blank.
BLANK_RANGE = 1 / 65535


@dataclass
class ReadResult:
    """Everything the CLI, API and exporters report for one file."""

    file: str
    radiograph: Radiograph
    reading: Reading
    model: ModelInfo
    heatmap: Path | None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        meta = self.radiograph.meta
        return {
            "file": self.file,
            "model": {"name": self.model.name, "version": self.model.version},
            "probabilities": {k: round(v, 6) for k, v in self.reading.probabilities.items()},
            "abnormal": round(self.reading.abnormal, 6),
            "priority": str(self.reading.priority),
            "top_finding": self.reading.top_finding,
            "heatmap": str(self.heatmap) if self.heatmap is not None else None,
            "heatmap_finding": self.reading.heatmap_finding,
            "warnings": list(self.warnings),
            "image": {
                "modality": meta.modality,
                "view": meta.view_position,
                "rows": meta.rows,
                "columns": meta.columns,
                "photometric": meta.photometric,
            },
        }


def input_warnings(radiograph: Radiograph, model: ModelInfo) -> list[str]:
    """Conditions under which the read should be trusted less, in plain words."""
    meta = radiograph.meta
    out: list[str] = []
    lateral = radiograph.lateral_reason
    if lateral:
        out.append(
            f"lateral view ({lateral}): the model was trained and validated on frontal "
            "(PA/AP) films only; this read is not reliable"
        )
    rows, cols = radiograph.pixels.shape
    if min(rows, cols) < MIN_SIDE_PX:
        out.append(
            f"small image ({cols}x{rows} px, under {MIN_SIDE_PX} px): fine detail is lost; "
            "send the original-resolution film if there is one"
        )
    age = meta.patient_age_years
    if age is not None and not any(lo <= age < hi for lo, hi in model.validated_age_ranges):
        ranges = ", ".join(f"{lo:g}-{hi:g} y" for lo, hi in model.validated_age_ranges)
        out.append(
            f"patient age {age:g} y is outside the ages the model was validated on ({ranges})"
        )
    if (meta.burned_in_annotation or "").upper() == "YES":
        out.append(
            "Burned In Annotation = YES: the image carries burned-in text, which may hold "
            "patient identity and can distract the model"
        )
    return out


#: Manufacturer written into the SR and heatmap SC dxassist sends back: an instance with it is
#: dxassist's own output coming back from the PACS, never a film to read.
RESULT_MANUFACTURER = "dxassist"

#: BodyPartExamined values (or parts of them) that name the chest; a DICOM image with any
#: other body part (HAND, SKULL, ABDOMEN...) is not read as a chest film.
CHEST_BODY_PARTS = ("CHEST", "THORAX", "LUNG", "HEART", "TORSO")


def body_part_problem(body_part: str | None) -> str | None:
    """Why a film with this BodyPartExamined is not a chest film, or None if it may be."""
    if not body_part:
        return None
    part = body_part.strip().upper()
    if not part or any(word in part for word in CHEST_BODY_PARTS):
        return None
    return (
        f"Body Part Examined is {part}, not the chest; dxassist reads chest radiographs only "
        "(if this is a chest film, correct BodyPartExamined at the modality)"
    )


def check_readable(radiograph: Radiograph, file: str) -> None:
    """Refuse images the model cannot read anything from (not the chest, tiny or blank)."""
    if (radiograph.meta.manufacturer or "").strip().lower() == RESULT_MANUFACTURER:
        raise NotARadiographError(
            f"{file}: this is a dxassist result object (the heatmap or report dxassist sends "
            "to the PACS), not a radiograph; it is never read again"
        )
    problem = body_part_problem(radiograph.meta.body_part)
    if problem:
        raise NotARadiographError(f"{file}: {problem}")
    pixels = radiograph.pixels
    rows, cols = pixels.shape
    if min(rows, cols) < MIN_READABLE_SIDE_PX:
        raise NotARadiographError(
            f"{file}: image is only {cols}x{rows} px, too small to hold a chest radiograph "
            f"(at least {MIN_READABLE_SIDE_PX} px a side, {MIN_SIDE_PX}+ for fine detail); "
            "send the original-resolution image"
        )
    low, high = float(pixels.min()), float(pixels.max())
    if high - low < BLANK_RANGE:
        raise NotARadiographError(
            f"{file}: image is blank (every pixel has the same grey level, {low:.2f} on "
            "0..1), so there is nothing to read; check that the right image was exported"
        )


def heatmap_path(heatmap_dir: Path, file: Path, taken: set[Path]) -> Path:
    """``<dir>/<stem>_heatmap.png``, numbered when two inputs share a stem.

    Characters that do not print (newlines, bytes that are not UTF-8) become ``_``, and
    a very long stem is shortened so the name fits the 255-byte limit of file systems.
    """
    stem = "".join(c if c.isprintable() else "_" for c in file.stem) or "image"
    while len(stem.encode("utf-8")) > MAX_STEM_BYTES:
        stem = stem[:-1]
    candidate = heatmap_dir / f"{stem}_heatmap.png"
    n = 2
    while candidate in taken:
        candidate = heatmap_dir / f"{stem}_{n}_heatmap.png"
        n += 1
    taken.add(candidate)
    return candidate


def read_file(
    path: Path,
    model: CxrModel,
    heatmap_to: Path | None,
) -> ReadResult:
    """Read one file end to end. Raises ``DxAssistError`` subclasses for bad input."""
    t0 = time.perf_counter()
    radiograph = load_file(path)
    check_readable(radiograph, str(path))
    t1 = time.perf_counter()
    reading = model.read(radiograph)
    if not all(math.isfinite(p) for p in reading.probabilities.values()):
        raise ModelError(
            f"the model returned non-finite probabilities; the model file {model.path} "
            "is corrupt - reinstall it"
        )
    heatmap: Path | None = None
    t2 = time.perf_counter()
    if heatmap_to is not None:
        heatmap = write_overlay(heatmap_to, radiograph.pixels, reading.cam)
    t3 = time.perf_counter()
    reading.timings_ms["decode"] = (t1 - t0) * 1e3
    reading.timings_ms["heatmap"] = (t3 - t2) * 1e3
    warnings = [*radiograph.warnings, *input_warnings(radiograph, model.info)]
    caveat = model.info.caveats.get(reading.top_finding)
    if caveat:
        warnings.append(caveat)
    return ReadResult(
        file=str(path),
        radiograph=radiograph,
        reading=reading,
        model=model.info,
        heatmap=heatmap,
        warnings=warnings,
    )
