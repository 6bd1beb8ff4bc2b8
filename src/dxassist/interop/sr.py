"""The DICOM Structured Report of one read: a TID 1500 Measurement Report in a Comprehensive SR.

Why TID 1500: it is the standard template for numbers an algorithm derives from an image
(highdicom builds and parses it, viewers such as OHIF and 3D Slicer read it). Each finding
is a TID 1501 measurement group: the finding coded (SNOMED CT), the algorithm (TID 4019),
the source image, and one TID 300 measurement "Probability" (DCM 122157) in UCUM "1"
(0..1, as the model returns it). The value is written both as Numeric Value (DS, 16
characters) and Floating Point Value (FD, exact), so it reads back bit for bit.
The read as a whole (most probable finding, triage tier, heatmap finding, warnings, the
intended-use statement) goes in the document-level "Qualitative Evaluations" container.
The Comprehensive SR SOP Class (not Comprehensive 3D) is used: nothing here has 3D
coordinates, and it is the SR class PACSs most often accept.

The content tree is described in docs/integration.md (section "Structured Report").
"""

from __future__ import annotations

import warnings

import highdicom as hd
from highdicom.sr import CodedConcept
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dxassist.cxr.taxonomy import FINDINGS
from dxassist.interop import codes as dx
from dxassist.interop.result import AiResult, ResultFormatError, software_versions

SOFTWARE_VERSIONS = 0x00181020

__all__ = ["AiResult", "build_sr", "read_sr_probabilities"]

INTENDED_USE_TEXT = (
    "Research use only. Not a medical device. Computer-generated second opinion; every "
    "read must be confirmed by a radiologist."
)

#: Modality codes (CID 29) of the images the reader accepts, for the Image Library.
_MODALITY_CODES: dict[str, CodedConcept] = {
    "CR": CodedConcept.from_code(codes.cid29.ComputedRadiography),
    "DX": CodedConcept.from_code(codes.cid29.DigitalRadiography),
}

_REL = hd.sr.RelationshipTypeValues

#: highdicom warns about single-component person names (e.g. a referring physician
#: "ward") that it copies from the source; the value is the source's, so it is kept.
_NAME_WARNING = ".*unlikely to represent the intended person name.*"


def _require_image(source: Dataset) -> None:
    missing = [
        k for k in ("StudyInstanceUID", "SOPClassUID", "SOPInstanceUID") if not source.get(k)
    ]
    if missing:
        raise ResultFormatError(
            f"the source image lacks {', '.join(missing)}; an SR can only be built for a "
            "DICOM image (pass the dataset the read was made from)"
        )


def _algorithm(result: AiResult) -> hd.sr.AlgorithmIdentification:
    return hd.sr.AlgorithmIdentification(
        name=result.model_name,
        version=result.model_version,
        family=codes.DCM.ArtificialIntelligence,
        manufacturer="dxassist",
    )


def _image_library(source: Dataset) -> hd.sr.ContentSequence:
    """TID 1600 with one entry. Built by hand: highdicom's descriptors for CR/DX require
    Imager Pixel Spacing and Patient Orientation, which CR images often lack."""
    image = hd.sr.ImageContentItem(
        name=CodedConcept(value="260753009", scheme_designator="SCT", meaning="Source"),
        referenced_sop_class_uid=source.SOPClassUID,
        referenced_sop_instance_uid=source.SOPInstanceUID,
        relationship_type=_REL.CONTAINS,
    )
    descriptors: list[hd.sr.ContentItem] = []
    modality = _MODALITY_CODES.get(str(source.get("Modality", "")))
    if modality is not None:
        descriptors.append(
            hd.sr.CodeContentItem(
                name=codes.DCM.Modality, value=modality, relationship_type=_REL.HAS_ACQ_CONTEXT
            )
        )
    pixels = CodedConcept(value="{pixels}", scheme_designator="UCUM", meaning="Pixels")
    for name, attr in ((codes.DCM.PixelDataRows, "Rows"), (codes.DCM.PixelDataColumns, "Columns")):
        if source.get(attr):
            descriptors.append(
                hd.sr.NumContentItem(
                    name=name,
                    value=int(source.get(attr)),
                    unit=pixels,
                    relationship_type=_REL.HAS_ACQ_CONTEXT,
                )
            )
    if descriptors:
        image.ContentSequence = hd.sr.ContentSequence(descriptors)
    group = hd.sr.ContainerContentItem(
        name=codes.DCM.ImageLibraryGroup, relationship_type=_REL.CONTAINS
    )
    group.ContentSequence = hd.sr.ContentSequence([image])
    library = hd.sr.ContainerContentItem(
        name=codes.DCM.ImageLibrary, relationship_type=_REL.CONTAINS
    )
    library.ContentSequence = hd.sr.ContentSequence([group])
    return hd.sr.ContentSequence([library])


def _group(
    finding: dx.FindingCode, probability: float, source: Dataset, result: AiResult
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    measurement = hd.sr.Measurement(
        name=dx.PROBABILITY,
        value=float(probability),
        unit=dx.UNIT_ONE,
        algorithm_id=_algorithm(result),
    )
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=generate_uid(), identifier=f"dxassist {finding.key}"
        ),
        finding_type=finding.concept,
        source_images=[
            hd.sr.SourceImageForMeasurementGroup(
                referenced_sop_class_uid=source.SOPClassUID,
                referenced_sop_instance_uid=source.SOPInstanceUID,
            )
        ],
        measurements=[measurement],
    )


def _qualitative_evaluations(result: AiResult) -> hd.sr.ContainerContentItem:
    items: list[hd.sr.ContentItem] = [
        hd.sr.CodeContentItem(
            name=dx.MOST_PROBABLE_FINDING,
            value=dx.FINDING_CODES[result.top_finding].concept,
            relationship_type=_REL.CONTAINS,
        ),
        hd.sr.CodeContentItem(
            name=dx.TRIAGE_PRIORITY,
            value=dx.PRIORITY_CODES[result.priority],
            relationship_type=_REL.CONTAINS,
        ),
    ]
    if result.heatmap_finding is not None:
        items.append(
            hd.sr.CodeContentItem(
                name=dx.HEATMAP_FINDING,
                value=dx.FINDING_CODES[result.heatmap_finding].concept,
                relationship_type=_REL.CONTAINS,
            )
        )
    items.extend(
        hd.sr.TextContentItem(name=dx.READ_WARNING, value=w, relationship_type=_REL.CONTAINS)
        for w in result.warnings
        if w.strip()
    )
    items.append(
        hd.sr.TextContentItem(
            name=dx.INTENDED_USE, value=INTENDED_USE_TEXT, relationship_type=_REL.CONTAINS
        )
    )
    container = hd.sr.ContainerContentItem(
        name=dx.QUALITATIVE_EVALUATIONS, relationship_type=_REL.CONTAINS
    )
    container.ContentSequence = hd.sr.ContentSequence(items)
    return container


def build_sr(
    source: Dataset,
    result: AiResult,
    *,
    series_number: int = 9901,
    instance_number: int = 1,
    manufacturer: str = "dxassist",
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
) -> Dataset:
    """The SR of ``result`` for the image ``source``: same study and patient, a new series.

    Pass ``series_instance_uid`` to put several SRs of one study in one series, and
    ``sop_instance_uid`` to rebuild the very same instance (e.g. when re-sending).
    """
    _require_image(source)
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        # one stable UID per model version: the "device" that made the observation
        uid=generate_uid(entropy_srcs=["dxassist", result.model_name, result.model_version]),
        name="dxassist",
        manufacturer_name="dxassist",
        model_name=result.model_name,
    )
    observation = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Device, observer_identifying_attributes=device
        )
    )
    groups = [
        _group(dx.FINDING_CODES[k], result.probabilities[k], source, result) for k in FINDINGS
    ]
    groups.append(_group(dx.ANY_PNEUMONIA, result.abnormal, source, result))
    report = hd.sr.MeasurementReport(
        observation_context=observation,
        procedure_reported=dx.PLAIN_CHEST_XRAY,
        imaging_measurements=groups,
    )
    root = report[0]
    # TID 1500 order: ..., procedure reported, Image Library, Imaging Measurements, QE
    position = next(
        i for i, item in enumerate(root.ContentSequence) if item.ValueType == "CONTAINER"
    )
    for offset, item in enumerate(_image_library(source)):
        root.ContentSequence.insert(position + offset, item)
    root.ContentSequence.append(_qualitative_evaluations(result))

    with warnings.catch_warnings():
        # names are copied verbatim from the source; dciodvfy reports odd ones
        warnings.filterwarnings("ignore", message=_NAME_WARNING, category=UserWarning)
        sr = hd.sr.ComprehensiveSR(
            evidence=[source],
            content=report,
            series_instance_uid=series_instance_uid or generate_uid(),
            series_number=series_number,
            sop_instance_uid=sop_instance_uid or generate_uid(),
            instance_number=instance_number,
            manufacturer=manufacturer,
            is_complete=True,
            is_final=False,  # PRELIMINARY: a radiologist must confirm the read
            is_verified=False,
            transfer_syntax_uid=ExplicitVRLittleEndian,
        )
    sr.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: warnings and names may be any script
    sr.SeriesDescription = "dxassist AI read (not for diagnosis)"
    sr.ManufacturerModelName = result.model_name
    sr.add_new(SOFTWARE_VERSIONS, "LO", software_versions(result))
    sr.CodingSchemeIdentificationSequence = [dx.local_scheme_identification()]
    return sr


def _code_value(item: Dataset) -> tuple[str, str]:
    seq = item.get("ConceptCodeSequence") or []
    return (str(seq[0].CodingSchemeDesignator), str(seq[0].CodeValue)) if seq else ("", "")


def _concept_name(item: Dataset) -> tuple[str, str]:
    seq = item.get("ConceptNameCodeSequence") or []
    return (str(seq[0].CodingSchemeDesignator), str(seq[0].CodeValue)) if seq else ("", "")


def _numeric(item: Dataset) -> float:
    measured = item.get("MeasuredValueSequence") or []
    if not measured:
        raise ResultFormatError("a probability item of the SR has no value")
    value = measured[0]
    if "FloatingPointValue" in value:
        return float(value.FloatingPointValue)
    return float(value.NumericValue)


def _groups(items: list[Dataset]) -> list[Dataset]:
    out: list[Dataset] = []
    for item in items:
        if item.get("ValueType") == "CONTAINER" and _concept_name(item) == ("DCM", "125007"):
            out.append(item)
        else:
            out.extend(_groups(list(item.get("ContentSequence") or [])))
    return out


def read_sr_probabilities(sr: Dataset) -> dict[str, float]:
    """The finding probabilities of an SR made by :func:`build_sr`, in FINDINGS order."""
    probability = (dx.PROBABILITY.scheme_designator, dx.PROBABILITY.value)
    found: dict[str, float] = {}
    for group in _groups(list(sr.get("ContentSequence") or [])):
        children = list(group.get("ContentSequence") or [])
        finding = [_code_value(c) for c in children if _concept_name(c) == ("DCM", "121071")]
        values = [_numeric(c) for c in children if _concept_name(c) == probability]
        if len(finding) != 1 or len(values) != 1:
            continue
        scheme, code = finding[0]
        key = dx.FINDING_BY_CODE.get(code) if scheme == "SCT" else None
        if key is None:
            continue  # e.g. the any-pneumonia group
        if key in found:
            raise ResultFormatError(f"the SR has two probabilities for {key}")
        found[key] = values[0]
    missing = [k for k in FINDINGS if k not in found]
    if missing:
        raise ResultFormatError(
            f"the SR has no probability for {', '.join(missing)}; is it a dxassist SR?"
        )
    return {k: found[k] for k in FINDINGS}
