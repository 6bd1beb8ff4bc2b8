"""The Structured Report of a real read: content, identity, round trip, dciodvfy."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from pydicom.uid import ComprehensiveSRStorage

from dxassist.cxr.taxonomy import FINDINGS
from dxassist.interop import codes
from dxassist.interop.result import AiResult, ResultFormatError
from dxassist.interop.sr import INTENDED_USE_TEXT, build_sr, read_sr_probabilities
from dxassist.interop.validate import dciodvfy_errors, dciodvfy_warnings
from tests.interop.conftest import CrRead, needs_dciodvfy, roundtrip, save


def _items(ds: pydicom.Dataset) -> list[pydicom.Dataset]:
    """Every content item of the tree, depth first."""
    out: list[pydicom.Dataset] = []
    for item in ds.get("ContentSequence") or []:
        out.append(item)
        out.extend(_items(item))
    return out


def _named(ds: pydicom.Dataset, concept: hd.sr.CodedConcept) -> list[pydicom.Dataset]:
    return [
        i
        for i in _items(ds)
        if i.ConceptNameCodeSequence[0].CodeValue == concept.value
        and i.ConceptNameCodeSequence[0].CodingSchemeDesignator == concept.scheme_designator
    ]


def test_sr_probabilities_round_trip_to_the_read_json(cr_read: CrRead) -> None:
    """The lead's Orthanc test compares these: SR from an in-process read, bytes, back."""
    expected = cr_read.json["probabilities"]
    for result in (AiResult.from_read_result(cr_read.read), AiResult.from_read_json(cr_read.json)):
        back = roundtrip(build_sr(cr_read.source, result))
        got = read_sr_probabilities(back)
        assert list(got) == list(FINDINGS)
        assert {k: round(v, 6) for k, v in got.items()} == expected
    # exact, not just to 6 decimals: FD carries the float bit for bit
    exact = AiResult.from_read_result(cr_read.read)
    assert read_sr_probabilities(roundtrip(build_sr(cr_read.source, exact))) == exact.probabilities


def test_sr_is_in_the_source_study_in_a_new_series(cr_read: CrRead) -> None:
    src = cr_read.source
    sr = roundtrip(
        build_sr(src, AiResult.from_read_json(cr_read.json), series_number=77, instance_number=3)
    )
    assert sr.SOPClassUID == ComprehensiveSRStorage
    assert sr.Modality == "SR"
    assert sr.StudyInstanceUID == src.StudyInstanceUID
    assert sr.SeriesInstanceUID != src.SeriesInstanceUID
    assert sr.SOPInstanceUID != src.SOPInstanceUID
    assert (sr.SeriesNumber, sr.InstanceNumber) == (77, 3)
    for attr in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber"):
        assert sr.get(attr) == src.get(attr), attr
    assert sr.Manufacturer == "dxassist"
    assert "not for diagnosis" in sr.SeriesDescription
    assert sr.CompletionFlag == "COMPLETE"
    assert sr.PreliminaryFlag == "PRELIMINARY"
    assert sr.VerificationFlag == "UNVERIFIED"
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == src.StudyInstanceUID
    ref = evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert (ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID) == (
        src.SOPClassUID,
        src.SOPInstanceUID,
    )
    two = build_sr(src, AiResult.from_read_json(cr_read.json), series_instance_uid="1.2.3.4")
    assert two.SeriesInstanceUID == "1.2.3.4"


def test_sr_content_tree_carries_the_whole_read(cr_read: CrRead) -> None:
    result = AiResult.from_read_json(cr_read.json)
    sr = roundtrip(build_sr(cr_read.source, result))
    root = sr.ConceptNameCodeSequence[0]
    assert (root.CodeValue, root.CodingSchemeDesignator) == ("126000", "DCM")
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"

    # highdicom parses it as a TID 1500 report: one group per finding + any pneumonia
    parsed = hd.sr.ComprehensiveSR.from_dataset(sr)
    groups = parsed.content.get_image_measurement_groups()
    assert [g.finding_type.value for g in groups] == [
        *(codes.FINDING_CODES[k].code for k in FINDINGS),
        codes.ANY_PNEUMONIA.code,
    ]
    for g in groups:
        (m,) = g.get_measurements()
        assert m.name == codes.PROBABILITY
        assert m.unit == codes.UNIT_ONE
        (img,) = g.source_images
        assert img.referenced_sop_instance_uid == cr_read.source.SOPInstanceUID
    assert groups[-1].get_measurements()[0].value == pytest.approx(
        1 - result.probabilities["normal"]
    )

    names = [i.TextValue for i in _named(sr, hd.sr.CodedConcept("111001", "DCM", "Algorithm Name"))]
    versions = [i.TextValue for i in _named(sr, hd.sr.CodedConcept("111003", "DCM", "x"))]
    assert set(names) == {result.model_name} and set(versions) == {result.model_version}
    assert len(names) == len(FINDINGS) + 1

    (top,) = _named(sr, codes.MOST_PROBABLE_FINDING)
    assert top.ConceptCodeSequence[0].CodeValue == codes.FINDING_CODES[result.top_finding].code
    (tier,) = _named(sr, codes.TRIAGE_PRIORITY)
    assert tier.ConceptCodeSequence[0].CodeValue == codes.PRIORITY_CODES[result.priority].value
    (heat,) = _named(sr, codes.HEATMAP_FINDING)
    assert (
        heat.ConceptCodeSequence[0].CodeValue
        == codes.FINDING_CODES[str(result.heatmap_finding)].code
    )
    assert [i.TextValue for i in _named(sr, codes.READ_WARNING)] == result.warnings
    assert [i.TextValue for i in _named(sr, codes.INTENDED_USE)] == [INTENDED_USE_TEXT]
    (library_image,) = _named(sr, hd.sr.CodedConcept("260753009", "SCT", "Source"))
    assert library_image.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == (
        cr_read.source.SOPInstanceUID
    )
    scheme = sr.CodingSchemeIdentificationSequence[0]
    assert scheme.CodingSchemeDesignator == codes.LOCAL_SCHEME


def test_sr_keeps_non_latin_text(cr_read: CrRead) -> None:
    """Warnings and names in any script survive (the SR is UTF-8)."""
    src = pydicom.dcmread(cr_read.path)
    src.PatientName = "Müller^Jürgen"
    src_back = roundtrip(src)  # the source written in its own ISO_IR 100
    result = dataclasses.replace(
        AiResult.from_read_json(cr_read.json),
        warnings=["score ≥ 0.936 → urgent", "患者"],
        heatmap_finding=None,
    )
    sr = roundtrip(build_sr(src_back, result))
    assert sr.SpecificCharacterSet == "ISO_IR 192"
    assert str(sr.PatientName) == "Müller^Jürgen"
    assert [i.TextValue for i in _named(sr, codes.READ_WARNING)] == result.warnings
    assert _named(sr, codes.HEATMAP_FINDING) == []


def test_sr_needs_an_image_and_reading_needs_a_dxassist_sr(cr_read: CrRead) -> None:
    result = AiResult.from_read_json(cr_read.json)
    bare = pydicom.Dataset()
    bare.StudyInstanceUID = "1.2.3"
    with pytest.raises(ResultFormatError, match="lacks SOPClassUID, SOPInstanceUID"):
        build_sr(bare, result)
    sr = build_sr(cr_read.source, result)
    # drop the COVID-19 group: the reader must say what is missing, not guess
    imaging = next(
        i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "126010"
    )
    imaging.ContentSequence = [
        g
        for g in imaging.ContentSequence
        if not any(
            getattr(c, "ConceptCodeSequence", [None])[0] is not None
            and c.ConceptCodeSequence[0].CodeValue == "840539006"
            for c in g.ContentSequence
        )
    ]
    with pytest.raises(ResultFormatError, match="no probability for covid19"):
        read_sr_probabilities(sr)
    with pytest.raises(ResultFormatError, match="no probability for normal"):
        read_sr_probabilities(pydicom.Dataset())


@needs_dciodvfy
def test_sr_passes_dciodvfy(cr_read: CrRead, tmp_path: Path) -> None:
    path = save(
        build_sr(cr_read.source, AiResult.from_read_json(cr_read.json)), tmp_path / "sr.dcm"
    )
    assert dciodvfy_errors(path) == []
    warnings = dciodvfy_warnings(path)
    # expected: the local coding scheme is not in dciodvfy's list, and the source's
    # one-component referring physician name ("ward") is copied as is
    assert all("99DXA" in w or "Referring Physician" in w for w in warnings), warnings


@needs_dciodvfy
def test_dciodvfy_does_catch_errors(cr_read: CrRead, tmp_path: Path) -> None:
    sr = build_sr(cr_read.source, AiResult.from_read_json(cr_read.json))
    del sr.CompletionFlag  # type 1 in the SR Document General module
    buf = io.BytesIO()
    sr.save_as(buf, enforce_file_format=True)
    path = tmp_path / "broken.dcm"
    path.write_bytes(buf.getvalue())
    errors = dciodvfy_errors(path)
    assert any("CompletionFlag" in e for e in errors), errors


@needs_dciodvfy
def test_sr_and_sc_from_a_header_only_source_pass_dciodvfy(cr_read: CrRead, tmp_path: Path) -> None:
    """Delivery reads the received file without its pixels; that is enough for both."""
    from dxassist.interop.sc import build_heatmap_sc

    header = pydicom.dcmread(cr_read.path, stop_before_pixels=True)
    result = AiResult.from_read_json(cr_read.json)
    sr_path = save(build_sr(header, result), tmp_path / "sr.dcm")
    sc_path = save(build_heatmap_sc(header, cr_read.overlay, result), tmp_path / "sc.dcm")
    assert dciodvfy_errors(sr_path) == [] and dciodvfy_errors(sc_path) == []
    assert read_sr_probabilities(pydicom.dcmread(sr_path)) == result.probabilities
