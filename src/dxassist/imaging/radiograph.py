"""The one object every chest radiograph becomes, whatever file it came from."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

#: Images with more pixels than this are refused before decoding. The largest chest
#: detectors and film digitisers give under 20 megapixels; a header claiming far more is
#: corrupt or a decompression bomb, and decoding it would exhaust memory.
MAX_PIXELS = 50_000_000

FRONTAL_VIEWS = frozenset({"PA", "AP", "AP SUPINE"})
LATERAL_VIEWS = frozenset({"LL", "RL", "LAT", "LATERAL", "RLD", "LLD"})
_LATERAL_WORD = re.compile(r"\b(LAT|LATERAL|LL|RL|SEITLICH|侧位)\b|侧位", re.IGNORECASE)
_FRONTAL_WORD = re.compile(r"\b(PA|AP|FRONTAL|POSTERO|ANTERO)|正位", re.IGNORECASE)


@dataclass(frozen=True)
class RadiographMeta:
    """Metadata of a radiograph; every field is optional except the source format.

    Attributes
    ----------
    source_format:
        ``"dicom"``, ``"png"`` or ``"jpeg"``.
    modality:
        DICOM Modality (``CR``, ``DX``, ``OT``...) or ``None`` for plain images.
    view_position:
        DICOM ViewPosition upper-cased (``PA``, ``AP``, ``LL``...) or ``None``.
    photometric:
        Photometric interpretation of the *stored* pixels (``MONOCHROME1``, ``MONOCHROME2``,
        ``RGB``...), or the PIL mode for plain images.
    pixel_spacing_mm:
        (row, column) spacing from PixelSpacing, else ImagerPixelSpacing; ``None`` if
        absent or not positive.
    patient_age_years:
        From PatientAge (``045Y``, ``006M``...; a bare number is read as years).
    windowing:
        How DICOM grey levels were mapped to [0, 1]: ``"voi_lut"`` (VOI LUT Sequence),
        ``"window"`` (first Window Center/Width) or ``"percentile"`` (0.5-99.5th
        percentile, when the file has neither); ``None`` for colour and plain images.
    number_of_frames:
        Frames in the file; only the first is loaded.
    """

    source_format: str
    modality: str | None = None
    sop_class_uid: str | None = None
    view_position: str | None = None
    body_part: str | None = None
    rows: int = 0
    columns: int = 0
    pixel_spacing_mm: tuple[float, float] | None = None
    photometric: str | None = None
    bits_stored: int | None = None
    manufacturer: str | None = None
    patient_name: str | None = None
    patient_id: str | None = None
    patient_age_years: float | None = None
    patient_sex: str | None = None
    burned_in_annotation: str | None = None
    presentation_intent: str | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None
    transfer_syntax_uid: str | None = None
    windowing: str | None = None
    number_of_frames: int = 1
    #: free-text descriptions that may name the view when ViewPosition is absent:
    #: View Code Sequence meaning, Series Description, Protocol Name
    view_hints: tuple[str, ...] = ()


@dataclass
class Radiograph:
    """Display-ready pixels plus metadata.

    ``pixels`` is a 2-D float32 array in [0, 1] in which bone (and air-free tissue) is
    bright and air is dark, i.e. the way a radiologist looks at a chest film, with any
    Modality LUT, VOI LUT / window and Presentation LUT already applied.
    ``warnings`` collects things the loader noticed but could work around (e.g. a
    character set it could not decode); they are shown to the user, never swallowed.
    """

    pixels: npt.NDArray[np.float32]
    meta: RadiographMeta
    warnings: list[str] = field(default_factory=list)

    @property
    def is_lateral(self) -> bool:
        return self.lateral_reason is not None

    @property
    def lateral_reason(self) -> str | None:
        """Why this looks like a lateral (non-frontal) film, or None.

        ViewPosition decides when present. Without it, a description naming a lateral
        view and no frontal one (e.g. Series Description "CHEST LAT") counts.
        """
        view = (self.meta.view_position or "").upper()
        if view:
            return f"ViewPosition {view}" if view in LATERAL_VIEWS else None
        for hint in self.meta.view_hints:
            if _LATERAL_WORD.search(hint) and not _FRONTAL_WORD.search(hint):
                return f"described as {hint!r}"
        return None
