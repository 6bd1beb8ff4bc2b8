"""The heatmap Secondary Capture of a real read: pixels, identity, flags, dciodvfy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

from dxassist.cxr.taxonomy import DISPLAY_NAMES
from dxassist.interop.result import AiResult, ResultFormatError
from dxassist.interop.sc import SERIES_DESCRIPTION, build_heatmap_sc
from dxassist.interop.validate import dciodvfy_errors, dciodvfy_warnings
from tests.interop.conftest import CrRead, needs_dciodvfy, roundtrip, save


def test_sc_holds_the_overlay_in_the_source_study(cr_read: CrRead) -> None:
    src = cr_read.source
    result = AiResult.from_read_json(cr_read.json)
    sc = roundtrip(build_heatmap_sc(src, cr_read.overlay, result, series_number=55))
    assert sc.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert sc.SOPClassUID == SecondaryCaptureImageStorage
    assert (sc.PhotometricInterpretation, sc.SamplesPerPixel, sc.BitsAllocated) == ("RGB", 3, 8)
    assert (sc.Rows, sc.Columns) == cr_read.overlay.shape[:2]
    assert np.array_equal(sc.pixel_array, cr_read.overlay)
    assert sc.StudyInstanceUID == src.StudyInstanceUID
    assert sc.SeriesInstanceUID != src.SeriesInstanceUID
    assert sc.SeriesNumber == 55 and sc.InstanceNumber == 1
    for attr in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber"):
        assert sc.get(attr) == src.get(attr), attr
    assert sc.SeriesDescription == SERIES_DESCRIPTION
    assert sc.BurnedInAnnotation == "NO"  # RG1 does not say; dxassist draws no text
    assert sc.LossyImageCompression == "00"
    assert list(sc.PatientOrientation) == list(src.PatientOrientation)
    ref = sc.SourceImageSequence[0]
    assert (ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID) == (
        src.SOPClassUID,
        src.SOPInstanceUID,
    )
    assert result.heatmap_finding is not None
    assert DISPLAY_NAMES[result.heatmap_finding] in sc.DerivationDescription
    assert "not for diagnosis" in sc.ImageComments


def test_sc_carries_the_sources_burned_in_text_and_lossy_flags(cr_read: CrRead) -> None:
    src = pydicom.dcmread(cr_read.path)
    src.BurnedInAnnotation = "YES"
    src.LossyImageCompression = "01"
    src.LossyImageCompressionMethod = "ISO_10918_1"
    del src.PatientOrientation
    sc = roundtrip(build_heatmap_sc(src, cr_read.overlay, AiResult.from_read_json(cr_read.json)))
    assert sc.BurnedInAnnotation == "YES"
    assert sc.LossyImageCompression == "01"
    assert sc.LossyImageCompressionMethod == "ISO_10918_1"
    assert "PatientOrientation" in sc and not sc.PatientOrientation  # type 2: empty


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        (np.zeros((10, 10), np.uint8), "shape \\(rows, columns, 3\\)"),
        (np.zeros((10, 10, 4), np.uint8), "shape \\(rows, columns, 3\\)"),
        (np.zeros((10, 10, 3), np.float32), "8-bit \\(uint8\\)"),
        ([[0, 0, 0]], "numpy array"),
    ],
)
def test_sc_refuses_a_bad_overlay(cr_read: CrRead, overlay: object, message: str) -> None:
    with pytest.raises(ResultFormatError, match=message):
        build_heatmap_sc(cr_read.source, overlay, AiResult.from_read_json(cr_read.json))  # type: ignore[arg-type]


@needs_dciodvfy
def test_sc_passes_dciodvfy(cr_read: CrRead, tmp_path: Path) -> None:
    sc = build_heatmap_sc(cr_read.source, cr_read.overlay, AiResult.from_read_json(cr_read.json))
    path = save(sc, tmp_path / "sc.dcm")
    assert dciodvfy_errors(path) == []
    warnings = dciodvfy_warnings(path)
    assert all("Referring Physician" in w for w in warnings), warnings


@needs_dciodvfy
def test_sc_of_a_dx_without_orientation_passes_dciodvfy(cr_read: CrRead, tmp_path: Path) -> None:
    src = pydicom.dcmread(cr_read.path, stop_before_pixels=True)
    del src.PatientOrientation
    src.Modality = "DX"
    sc = build_heatmap_sc(src, cr_read.overlay, AiResult.from_read_json(cr_read.json))
    assert dciodvfy_errors(save(sc, tmp_path / "sc.dcm")) == []
