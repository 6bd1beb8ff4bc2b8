"""De-identification per PS3.15 Annex E: a PHI sweep over a CR with every attribute
of the table planted, consistency of pseudonyms and references, dates, validity."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from dxassist.imaging import load_bytes
from dxassist.privacy.deid import (
    CLEAN_DESCRIPTORS,
    Deidentified,
    DeidOptions,
    LinkRecord,
    basic_action,
    deidentify,
    plan,
    pseudo_patient_id,
    pseudo_uid,
)
from dxassist.privacy.deid_table import BASIC_PROFILE
from dxassist.privacy.pseudonym import patient_key
from tests.privacy.phi import FIRST_DATE, Planted, build_phi_instance, identity

SECRET = b"0123456789abcdef" * 4
CHARSETS = ["GB18030", "ISO 2022 IR 58"]


def _bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@dataclasses.dataclass
class Run:
    inputs: list[Dataset]
    planted: list[Planted]
    outputs: list[Deidentified]
    files: list[bytes]


def _run(rg1: Path, charset: str, options: DeidOptions | None = None) -> Run:
    inputs, outputs, files = [], [], []
    planted: list[Planted] = []
    for n in (0, 1):
        ds, planted = build_phi_instance(rg1, identity(n), charset=charset)
        inputs.append(ds)
        # it goes through bytes as it would arrive (raw elements, the file's charset)
        arrived = pydicom.dcmread(io.BytesIO(_bytes(ds)))
        out = deidentify(arrived, SECRET, options)
        outputs.append(out)
        files.append(_bytes(out.dataset))
    return Run(inputs, planted, outputs, files)


@pytest.fixture(scope="module", params=CHARSETS)
def run(request: pytest.FixtureRequest, rg1_uncr: Path) -> Run:
    return _run(rg1_uncr, request.param)


@pytest.fixture(scope="module")
def run_no_dates(rg1_uncr: Path) -> Run:
    return _run(rg1_uncr, "GB18030", DeidOptions(retain_modified_dates=False))


def _walk(ds: Dataset) -> Iterator[pydicom.DataElement]:
    for elem in ds:
        yield elem
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _walk(item)


# --- the table --------------------------------------------------------------------------


def test_table_is_the_full_basic_profile() -> None:
    assert len(BASIC_PROFILE) == 655  # Table E.1-1 of PS3.15 2026c, every row
    actions = {row[2] for row in BASIC_PROFILE}
    assert actions == {"D", "Z", "X", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"}
    expected = {
        0x00100010: "Z",  # Patient's Name
        0x00100020: "Z/D",  # Patient ID
        0x00101040: "X",  # Patient's Address
        0x00101010: "X",  # Patient's Age (kept by Retain Patient Characteristics)
        0x0020000D: "U",  # Study Instance UID
        0x00080080: "X/Z/D",  # Institution Name
        0x00081140: "X/Z/U*",  # Referenced Image Sequence
        0x00080050: "Z",  # Accession Number
        0x60003000: "X",  # Overlay Data (60xx,3000)
        0x60224000: "X",  # Overlay Comments in another group of the repeating range
    }
    for tag, action in expected.items():
        found = basic_action(tag)
        assert found is not None and found[0] == action, hex(tag)


def test_basic_profile_alone_keeps_nothing_of_the_table() -> None:
    """Without options no attribute of the table is kept as it is, whatever its VR; with
    them only age, sex and times of day are (and descriptors after cleaning)."""
    basic, full = DeidOptions(False, False, False), DeidOptions()
    kept_with_options = set()
    for tag, _mask, action, _name in BASIC_PROFILE:
        for vr in ("PN", "LO", "DA", "DT", "TM", "UI", "SQ", "US", "OB"):
            op, why = plan(tag, vr, basic)
            assert op not in ("keep", "clean", "shift"), (hex(tag), vr, op)
            assert op != "recurse" or action == "X/Z/U*"
            assert why
            op, _why = plan(tag, vr, full)
            if op == "keep":
                kept_with_options.add((tag, vr if vr == "TM" else "*"))
    assert {t for t, vr in kept_with_options if vr != "TM"} == {0x00101010, 0x00100040}


# --- the PHI sweep ----------------------------------------------------------------------


def _allowed(p: Planted, options: DeidOptions) -> bool:
    """Planted values the profile (with our options) keeps: times of day under Retain
    Longitudinal Modified Dates (a whole-day shift does not change them)."""
    return options.retain_modified_dates and p.vr == "TM"


def _leaks(data: bytes, planted: list[Planted], options: DeidOptions) -> list[str]:
    return [
        f"{p.name}: {needle!r}"
        for p in planted
        if not _allowed(p, options)
        for needle in p.needles
        if needle in data
    ]


def test_no_planted_value_survives(run: Run) -> None:
    for data in run.files:
        leaks = _leaks(data, run.planted, DeidOptions())
        assert not leaks, f"{len(leaks)} planted values found, e.g. {leaks[:10]}"


def test_sweep_finds_a_leak(run: Run) -> None:
    """A negative control: a name put back into the output is found, in its encoding."""
    source = pydicom.dcmread(io.BytesIO(_bytes(run.inputs[0])))
    leaky = copy.deepcopy(run.outputs[0].dataset)
    leaky[0x00101001] = source.get_item(0x00101001)  # Other Patient Names, raw bytes
    found = _leaks(_bytes(leaky), run.planted, DeidOptions())
    own = [f for f in found if f.startswith("Other Patient Names: ")]
    assert [f for f in own if "PHIPN" in f]
    assert [f for f in own if "\\x" in f]  # the Chinese part, as bytes of the charset


def test_sweep_checks_what_it_claims(run: Run) -> None:
    """The planted file holds every needle (else the sweep would prove nothing)."""
    data = _bytes(run.inputs[0])
    missing = [p.name for p in run.planted if p.needles and not any(n in data for n in p.needles)]
    assert not missing
    planted_tags = {p.tag for p in run.planted}
    table_tags = {t for t, m, _a, _n in BASIC_PROFILE if m == 0xFFFFFFFF and t >> 16 > 4}
    assert len(table_tags - planted_tags) == 0


def test_numbers_and_ages_are_not_kept(run: Run) -> None:
    """Values too short to search for in the bytes (numbers, ages): checked by value."""
    out = run.outputs[0].dataset
    by_value = [p for p in run.planted if not p.needles and p.vr != "SQ" and p.tag]
    assert len(by_value) >= 4
    for p in by_value:
        if p.tag in (0x00101010, 0x00100040):  # Age, Sex: Retain Patient Characteristics
            assert out[p.tag].value == p.text
        elif p.tag in out:
            assert str(out[p.tag].value) != p.text, p.name


def test_table_sequences_are_removed_or_emptied(run: Run) -> None:
    """Every sequence of the table goes or is left empty, but for the two U* ones
    (Referenced Image, Source Image), which keep their items with new UIDs."""
    out = run.outputs[0].dataset
    sequences = [p for p in run.planted if p.vr == "SQ"]
    assert len(sequences) > 50
    for p in sequences:
        if p.tag in (0x00081140, 0x00082112):
            assert len(out[p.tag].value) == 1
        elif p.tag in out:
            assert len(out[p.tag].value) == 0, p.name


def test_without_dates_option_no_date_or_time_survives(run_no_dates: Run) -> None:
    dated = [p for p in run_no_dates.planted if p.vr in ("DA", "DT", "TM")]
    assert len(dated) > 50
    for data in run_no_dates.files:
        assert not [p.name for p in dated for n in p.needles if n in data]
    out = run_no_dates.outputs[0]
    assert out.dataset.LongitudinalTemporalInformationModified == "REMOVED"
    codes = [i.CodeValue for i in out.dataset.DeidentificationMethodCodeSequence]
    assert "113107" not in codes
    assert out.record.date_shift_days is None


def test_private_attributes_removed_at_every_depth(run: Run) -> None:
    for out in run.outputs:
        assert not [e.tag for e in _walk(out.dataset) if e.tag.is_private]


def test_identity_attributes(run: Run) -> None:
    ds = run.outputs[0].dataset
    assert ds.PatientIdentityRemoved == "YES"
    codes = [(i.CodeValue, i.CodingSchemeDesignator) for i in ds.DeidentificationMethodCodeSequence]
    assert codes == [("113100", "DCM"), ("113105", "DCM"), ("113107", "DCM"), ("113108", "DCM")]
    assert "Annex E" in ds.DeidentificationMethod[0]
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert "SourceApplicationEntityTitle" not in ds.file_meta


def test_what_the_reader_needs_is_kept(run: Run, rg1_uncr: Path) -> None:
    original = pydicom.dcmread(rg1_uncr)
    ds = run.outputs[0].dataset
    for keyword in ("Modality", "BodyPartExamined", "ViewPosition", "Rows", "Columns"):
        assert ds[keyword].value == original[keyword].value, keyword
    assert ds.PatientSex == "F"
    assert ds.PatientAge == "045Y"
    assert ds.PixelData == original.PixelData
    radiograph = load_bytes(run.files[0], "deid.dcm")
    assert radiograph.pixels.shape == (original.Rows, original.Columns)
    reference = load_bytes(rg1_uncr.read_bytes(), "rg1.dcm")
    assert np.array_equal(radiograph.pixels, reference.pixels)


# --- consistency --------------------------------------------------------------------------


def test_references_stay_consistent_across_a_study(run: Run) -> None:
    a, b = (o.dataset for o in run.outputs)
    ids = [identity(0), identity(1)]
    assert a.StudyInstanceUID == b.StudyInstanceUID == pseudo_uid(ids[0].study_uid, SECRET)
    assert a.SeriesInstanceUID == b.SeriesInstanceUID
    assert a.FrameOfReferenceUID == b.FrameOfReferenceUID
    assert a.SOPInstanceUID != b.SOPInstanceUID
    # each instance references the other one, in two sequences, under its new UID
    assert a.ReferencedImageSequence[0].ReferencedSOPInstanceUID == b.SOPInstanceUID
    assert b.ReferencedImageSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID
    assert a.SourceImageSequence[0].ReferencedSOPInstanceUID == b.SOPInstanceUID
    assert a.ReferencedImageSequence[0].ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.1"
    deep = a.ReferencedImageSequence[0].PurposeOfReferenceCodeSequence[0]
    assert deep.ReferencedImageSequence[0].StudyInstanceUID == a.StudyInstanceUID
    assert deep.CodeValue == "121311"  # a code is not an identifier: kept
    for uid in (a.StudyInstanceUID, a.SeriesInstanceUID, a.SOPInstanceUID):
        assert uid.startswith("2.25.") and len(uid) <= 64


def test_same_patient_same_pseudonym_every_upload(rg1_uncr: Path) -> None:
    def once(patient: str, secret: bytes = SECRET) -> Deidentified:
        ds, _ = build_phi_instance(rg1_uncr, identity(0, patient=patient))
        return deidentify(pydicom.dcmread(io.BytesIO(_bytes(ds))), secret)

    first, again = once("PHIPID-4711-ZW"), once("PHIPID-4711-ZW")
    key = patient_key("PHIPID-4711-ZW", SECRET)
    assert key is not None
    assert first.dataset.PatientID == again.dataset.PatientID == "DX-" + key[:16]
    assert first.dataset.PatientName == first.dataset.PatientID
    assert first.record.date_shift_days == again.record.date_shift_days
    assert first.dataset.StudyDate == again.dataset.StudyDate
    assert first.dataset.SOPInstanceUID == again.dataset.SOPInstanceUID
    other = once("PHIPID-9999-LI")
    assert other.dataset.PatientID != first.dataset.PatientID
    elsewhere = once("PHIPID-4711-ZW", b"another site secret, 32 bytes or more")
    assert elsewhere.dataset.PatientID != first.dataset.PatientID
    assert elsewhere.dataset.StudyInstanceUID != first.dataset.StudyInstanceUID
    # a nested Patient ID gets the pseudonym of its own value
    region = first.dataset.AnatomicRegionSequence[0]
    assert region.PatientID == pseudo_patient_id("PHIREGIONPID", SECRET)


def test_dates_shift_consistently(run: Run) -> None:
    shifts = {o.record.date_shift_days for o in run.outputs}
    assert len(shifts) == 1
    (shift,) = shifts
    assert shift is not None and -3650 <= shift <= -365
    source, out = run.inputs[0], run.outputs[0].dataset
    checked = 0
    for p in run.planted:
        if p.vr != "DA" or p.tag not in source or p.tag not in out or " > " in p.name:
            continue
        if p.tag == 0x00100030:  # Patient's Birth Date: emptied, not shifted
            continue
        day = dt.datetime.strptime(p.text, "%Y%m%d").date() + dt.timedelta(days=shift)
        assert out[p.tag].value == day.strftime("%Y%m%d"), p.name
        checked += 1
    assert checked > 20
    for p in run.planted:  # date-times: the date moves, the time of day stays
        if p.vr == "DT" and p.tag in out and " > " not in p.name:
            assert out[p.tag].value[8:] == p.text[8:]
            assert out[p.tag].value[:8] < FIRST_DATE.strftime("%Y%m%d")
    # the interval between two dates of the study is unchanged
    assert run.outputs[1].dataset.StudyDate == out.StudyDate
    assert "PatientBirthDate" not in out or not out.PatientBirthDate


def test_clean_descriptors(rg1_uncr: Path) -> None:
    ds = pydicom.dcmread(rg1_uncr)
    ds.SpecificCharacterSet = "GB18030"
    ds.StudyDescription = "胸部正位 PA"
    ds.SeriesDescription = "CHEST PA Dr Wang"
    ds.ProtocolName = "CHEST 2 VIEWS"
    ds.ImageComments = "portable, supine"
    out = deidentify(ds, SECRET).dataset
    assert out.StudyDescription == "CHEST FRONTAL PA"
    assert "SeriesDescription" not in out  # a name in it: Basic Profile action X
    assert "ProtocolName" not in out  # a number in it: X/D, removed
    assert out.ImageComments == "PORTABLE SUPINE"
    plain = deidentify(ds, SECRET, DeidOptions(clean_descriptors=False)).dataset
    assert "StudyDescription" not in plain
    assert all(basic_action(t) for t in CLEAN_DESCRIPTORS)


def test_record_maps_originals_to_pseudonyms(run: Run) -> None:
    record = run.outputs[0].record
    ids = identity(0)
    ds = run.outputs[0].dataset
    assert record.patient_id == ids.patient_id
    assert record.patient_name == "PHIPATIENT^Wei=王^小东"
    assert record.pseudo_patient_id == ds.PatientID
    assert record.study_instance_uid == ids.study_uid
    assert record.pseudo_study_instance_uid == ds.StudyInstanceUID
    assert record.series_instance_uid == ids.series_uid
    assert record.pseudo_series_instance_uid == ds.SeriesInstanceUID
    assert record.sop_instance_uid == ids.sop_uid
    assert record.pseudo_sop_instance_uid == ds.SOPInstanceUID
    assert record.accession_number is not None and record.accession_number.startswith("PHISH")
    assert record.uids[ids.frame_uid] == ds.FrameOfReferenceUID
    assert record.uids[ids.other_sop_uid] == run.outputs[1].dataset.SOPInstanceUID
    assert LinkRecord.from_json(record.to_json()) == record


def test_source_dataset_is_not_changed(rg1_uncr: Path) -> None:
    ds = pydicom.dcmread(rg1_uncr)
    before = _bytes(ds)
    deidentify(ds, SECRET)
    assert _bytes(ds) == before


def test_without_patient_id(rg1_uncr: Path) -> None:
    ds = pydicom.dcmread(rg1_uncr)
    del ds.PatientID
    out = deidentify(ds, SECRET)
    assert out.record.patient_id is None and out.record.pseudo_patient_id is None
    assert not out.dataset.PatientName
    assert out.record.date_shift_days is not None  # by the study instead


# --- validity ---------------------------------------------------------------------------


def _dciodvfy_errors(path: Path) -> set[str]:
    result = subprocess.run(
        ["dciodvfy", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    lines = (result.stdout + result.stderr).splitlines()
    return {line.strip() for line in lines if line.strip().startswith("Error")}


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) missing")
def test_output_passes_dciodvfy_with_no_new_errors(
    run: Run, rg1_uncr: Path, tmp_path: Path
) -> None:
    """No error that neither the real CR nor the planted input already had (the planted
    input has some: attributes dciodvfy does not know, a partial specimen module)."""
    baseline = _dciodvfy_errors(rg1_uncr)
    planted = tmp_path / "planted.dcm"
    planted.write_bytes(_bytes(run.inputs[0]))
    out = tmp_path / "deid.dcm"
    out.write_bytes(run.files[0])
    new = _dciodvfy_errors(out) - baseline - _dciodvfy_errors(planted)
    assert not new, sorted(new)
    plain = tmp_path / "plain.dcm"
    plain.write_bytes(_bytes(deidentify(pydicom.dcmread(rg1_uncr), SECRET).dataset))
    assert not _dciodvfy_errors(plain) - baseline


def test_clean_descriptor_in_iso_2022_ir_58(rg1_uncr: Path) -> None:
    ds = pydicom.dcmread(rg1_uncr)
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 58"]
    raw = b"\x1b$)A" + "胸部正位".encode("gb2312")
    ds[0x00081030] = pydicom.DataElement(0x00081030, "LO", raw)
    arrived = pydicom.dcmread(io.BytesIO(_bytes(ds)))
    assert deidentify(arrived, SECRET).dataset.StudyDescription == "CHEST FRONTAL"


def test_overlay_plane_goes_with_its_data(rg1_uncr: Path) -> None:
    ds = pydicom.dcmread(rg1_uncr)
    ds.add_new(0x60000010, "US", 8)  # Overlay Rows
    ds.add_new(0x60000011, "US", 8)  # Overlay Columns
    ds.add_new(0x60000040, "CS", "G")  # Overlay Type
    ds.add_new(0x60003000, "OW", b"\xff" * 8)  # Overlay Data (X)
    ds.add_new(0x04000500, "SQ", pydicom.Sequence([Dataset()]))  # Encrypted Attributes
    out = deidentify(ds, SECRET).dataset
    assert not [t for t in list(out.keys()) if t >> 16 == 0x6000]
    assert 0x04000500 not in out


def test_safe_private_list(rg1_uncr: Path) -> None:
    ds = pydicom.dcmread(rg1_uncr)
    ds.add_new(0x00190010, "LO", "ACME EXPOSURE")
    ds.add_new(0x00191001, "DS", "2.5")  # on the safe list
    ds.add_new(0x00191002, "LO", "PHIOPERATOR")  # same block, not on it
    ds.add_new(0x00190011, "LO", "ACME OTHER")
    ds.add_new(0x00191101, "DS", "7")  # same element byte, other creator
    default = deidentify(ds, SECRET).dataset
    assert not [e for e in default if e.tag.is_private]
    options = DeidOptions(safe_private=frozenset({(0x0019, "ACME EXPOSURE", 0x01)}))
    out = deidentify(ds, SECRET, options).dataset
    assert sorted(int(e.tag) for e in out if e.tag.is_private) == [0x00190010, 0x00191001]
    assert out[0x00191001].value == "2.5"
    codes = [i.CodeValue for i in out.DeidentificationMethodCodeSequence]
    assert codes[-1] == "113111"


def test_dataset_without_file_meta_keeps_its_encoding(rg1_uncr: Path) -> None:
    """As from C-STORE: no File Meta; the output says the encoding the data came in."""
    ds = pydicom.dcmread(rg1_uncr)
    del ds.file_meta
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, implicit_vr=True, little_endian=True)
    bare = pydicom.dcmread(io.BytesIO(buf.getvalue()), force=True)
    assert "TransferSyntaxUID" not in getattr(bare, "file_meta", {})
    out = deidentify(bare, SECRET).dataset
    assert out.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    again = pydicom.dcmread(io.BytesIO(_bytes(out)))
    assert again.PixelData == ds.PixelData


def test_dataset_built_in_code(rg1_uncr: Path) -> None:
    """Values set in Python (not read from bytes): names, multi-valued UIDs."""
    ds = pydicom.dcmread(rg1_uncr)
    ds.PatientName = "Wang^Wei"
    ds.PatientID = "PHIPID-CODE"
    ds.FailedSOPInstanceUIDList = ["1.2.826.0.1.3680043.10.999.7", "1.2.826.0.1.3680043.10.999.8"]
    out = deidentify(ds, SECRET)
    assert out.record.patient_name == "Wang^Wei"
    assert out.record.patient_id == "PHIPID-CODE"
    failed = out.dataset.FailedSOPInstanceUIDList
    assert list(failed) == [pseudo_uid(u, SECRET) for u in ds.FailedSOPInstanceUIDList]
