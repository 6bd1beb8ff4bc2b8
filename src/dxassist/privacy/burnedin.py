"""Which instances may carry identifying text in their pixels (burned-in annotation).

Header de-identification cannot remove a name written into the image itself. An
instance is held for review (the caller quarantines it) when Burned In Annotation
(0028,0301) says YES, or when it does not say NO or YES and the object is of a kind that
often has text burned in:

* Modality US (ultrasound: patient name and date on the screen), XC (external camera
  photos), ES (endoscopy video frames), OT (other: mostly screenshots);
* Secondary Capture SOP classes (1.2.840.10008.5.1.4.1.1.7 and .7.x): screenshots, film
  digitizers and scanned documents, where the film's label is part of the image;
* a Conversion Type (0008,0064) of DF (digitized film), SD (scanned document), SI
  (scanned image) or WSD (workstation): what was scanned or grabbed is in the pixels.

The list is kept small on purpose: CR and DX radiographs normally carry only side
markers in the pixels, so they pass unless they say YES.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

BURN_IN_MODALITIES = frozenset({"US", "XC", "ES", "OT"})
BURN_IN_CONVERSION_TYPES = frozenset({"DF", "SD", "SI", "WSD"})
SECONDARY_CAPTURE_ROOT = "1.2.840.10008.5.1.4.1.1.7"


def _text(ds: Dataset, keyword: str) -> str:
    try:
        value = ds.get(keyword)
    except Exception:  # an unreadable value counts as absent
        return ""
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        # YES\NO and the like: any YES counts as YES (the safe reading)
        values = [str(v).strip().upper() for v in value]
        return "YES" if "YES" in values else (values[0] if values else "")
    return str(value).strip().upper()


def needs_quarantine(ds: Dataset) -> str | None:
    """Why this instance must be reviewed before use, or None if it need not be."""
    burned = _text(ds, "BurnedInAnnotation")
    if burned == "YES":
        return "Burned In Annotation is YES: the pixels may show the patient's name or ID"
    if burned == "NO":
        return None
    modality = _text(ds, "Modality")
    sop_class = _text(ds, "SOPClassUID")
    conversion = _text(ds, "ConversionType")
    said = f"Burned In Annotation is {burned!r}" if burned else "Burned In Annotation is absent"
    if modality in BURN_IN_MODALITIES:
        return f"{said} on modality {modality}, which often has text burned into the pixels"
    if sop_class == SECONDARY_CAPTURE_ROOT or sop_class.startswith(SECONDARY_CAPTURE_ROOT + "."):
        return f"{said} on a Secondary Capture image (a screenshot or a scanned film)"
    if conversion in BURN_IN_CONVERSION_TYPES:
        return f"{said} and Conversion Type is {conversion} (scanned or grabbed from a screen)"
    return None
