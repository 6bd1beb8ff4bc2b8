"""The heatmap overlay as a DICOM Secondary Capture image (RGB, uncompressed).

Same study and patient as the source radiograph, a new series described as
"dxassist heatmap (not for diagnosis)". The overlay is the radiograph (downscaled to at
most 1024 px a side by ``cxr.heatmap``) with the class-activation map blended in; dxassist
draws no text on it.
"""

from __future__ import annotations

import warnings

import highdicom as hd
import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dxassist.cxr.taxonomy import DISPLAY_NAMES
from dxassist.interop.result import AiResult, ResultFormatError, software_versions

SOFTWARE_VERSIONS = 0x00181020
PATIENT_ORIENTATION = 0x00200020

SERIES_DESCRIPTION = "dxassist heatmap (not for diagnosis)"

#: highdicom warns about single-component person names (e.g. a referring physician
#: "ward") that it copies from the source; the value is the source's, so it is kept.
_NAME_WARNING = ".*unlikely to represent the intended person name.*"


def _check_overlay(overlay_rgb: npt.NDArray[np.uint8]) -> None:
    if not isinstance(overlay_rgb, np.ndarray):
        raise ResultFormatError(
            f"the heatmap overlay must be a numpy array, got {type(overlay_rgb).__name__}"
        )
    if overlay_rgb.ndim != 3 or overlay_rgb.shape[2] != 3 or min(overlay_rgb.shape[:2]) < 1:
        raise ResultFormatError(
            f"the heatmap overlay must be an RGB image of shape (rows, columns, 3), "
            f"got shape {overlay_rgb.shape}"
        )
    if overlay_rgb.dtype != np.uint8:
        raise ResultFormatError(
            f"the heatmap overlay must be 8-bit (uint8), got {overlay_rgb.dtype}"
        )


def _burned_in(source: Dataset) -> str:
    """The overlay holds the source's pixels: it has burned-in text iff the source has.

    dxassist adds none. A source that does not say (the attribute is optional for CR and
    DX) is taken as NO, the same reading the pipeline's burned-in warning uses.
    """
    return "YES" if str(source.get("BurnedInAnnotation", "")).upper() == "YES" else "NO"


def build_heatmap_sc(
    source: Dataset,
    overlay_rgb: npt.NDArray[np.uint8],
    result: AiResult,
    *,
    series_number: int = 9902,
    instance_number: int = 1,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> Dataset:
    """The overlay (rows, columns, 3) uint8 as an RGB Secondary Capture of ``source``'s study."""
    missing = [
        k for k in ("StudyInstanceUID", "SOPClassUID", "SOPInstanceUID") if not source.get(k)
    ]
    if missing:
        raise ResultFormatError(
            f"the source image lacks {', '.join(missing)}; a heatmap SC can only be built "
            "for a DICOM image (pass the dataset the read was made from)"
        )
    _check_overlay(overlay_rgb)
    with warnings.catch_warnings():
        # names are copied verbatim from the source; dciodvfy reports odd ones
        warnings.filterwarnings("ignore", message=_NAME_WARNING, category=UserWarning)
        sc = hd.sc.SCImage.from_ref_dataset(
            ref_dataset=source,
            pixel_array=np.ascontiguousarray(overlay_rgb),
            photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
            bits_allocated=8,
            coordinate_system=hd.CoordinateSystemNames.PATIENT,
            series_instance_uid=series_instance_uid or generate_uid(),
            series_number=series_number,
            sop_instance_uid=sop_instance_uid or generate_uid(),
            instance_number=instance_number,
            manufacturer="dxassist",
            # placeholder for highdicom's check; replaced below by the source's own value
            patient_orientation=("L", "F"),
            transfer_syntax_uid=ExplicitVRLittleEndian,
        )
    # The overlay is a resampled copy of the film: same orientation, unknown if unstated.
    sc.add_new(PATIENT_ORIENTATION, "CS", source.get("PatientOrientation") or None)
    sc.SpecificCharacterSet = "ISO_IR 192"
    sc.SeriesDescription = SERIES_DESCRIPTION
    if source.get("BodyPartExamined"):
        sc.BodyPartExamined = source.BodyPartExamined
    sc.ManufacturerModelName = result.model_name
    sc.add_new(SOFTWARE_VERSIONS, "LO", software_versions(result))
    sc.BurnedInAnnotation = _burned_in(source)
    if str(source.get("LossyImageCompression", "")) == "01":
        sc.LossyImageCompression = "01"
        for attr in ("LossyImageCompressionRatio", "LossyImageCompressionMethod"):
            if attr in source:
                setattr(sc, attr, source[attr].value)
    else:
        sc.LossyImageCompression = "00"

    finding = result.heatmap_finding
    about = f"class-activation heatmap of {DISPLAY_NAMES[finding]}" if finding else "radiograph"
    sc.DerivationDescription = (
        f"dxassist {about} ({result.model_name} {result.model_version}) over the source film"
    )[:1024]
    sc.ImageComments = (
        f"{about[0].upper()}{about[1:]} by {result.model_name} {result.model_version}. Colour "
        "shows where the model found evidence, not how likely the finding is. Research use "
        "only, not for diagnosis."
    )
    reference = Dataset()
    reference.ReferencedSOPClassUID = source.SOPClassUID
    reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
    purpose = hd.sr.CodedConcept.from_code(codes.DCM.SourceImageForImageProcessingOperation)
    reference.PurposeOfReferenceCodeSequence = [purpose]
    sc.SourceImageSequence = [reference]
    return sc
