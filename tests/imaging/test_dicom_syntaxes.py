"""Every transfer syntax a hospital sends, encoded at test time from the real RG1 crop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from dxassist.imaging import Radiograph, load_file

from .conftest import RG1_WINDOW, MakeDataset, dcmtk, needs_dcmtk, write

# One stored unit of RG1 is 1/29999 of the display range under its window.
UNIT = 1.0 / (RG1_WINDOW[1] - 1)
C12, W12 = RG1_WINDOW[0] / 8, RG1_WINDOW[1] / 8  # RG1's window in 12-bit units


def roundtrip(ds: pydicom.Dataset, tmp_path: Path, name: str = "x.dcm", **kw: Any) -> Radiograph:
    return load_file(write(ds, tmp_path / name, **kw))


def test_implicit_vr_little_endian(
    make_dataset: MakeDataset, tmp_path: Path, crop_expected: np.ndarray
) -> None:
    ds = make_dataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    rg = roundtrip(ds, tmp_path, implicit_vr=True)
    assert rg.meta.transfer_syntax_uid == ImplicitVRLittleEndian
    assert np.array_equal(rg.pixels, crop_expected)


def test_explicit_vr_big_endian(
    make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path, crop_expected: np.ndarray
) -> None:
    ds = make_dataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    ds.PixelData = crop_stored.astype(">u2").tobytes()  # OW words are big endian too
    rg = roundtrip(ds, tmp_path, implicit_vr=False, little_endian=False)
    assert rg.meta.transfer_syntax_uid == ExplicitVRBigEndian
    assert np.array_equal(rg.pixels, crop_expected)


def test_deflated_explicit_vr_little_endian(
    make_dataset: MakeDataset, tmp_path: Path, crop_expected: np.ndarray
) -> None:
    ds = make_dataset()
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    path = write(ds, tmp_path / "deflated.dcm")
    assert path.stat().st_size < ds.Rows * ds.Columns * 2  # really compressed
    rg = load_file(path)
    assert rg.meta.transfer_syntax_uid == DeflatedExplicitVRLittleEndian
    assert np.array_equal(rg.pixels, crop_expected)


LOSSLESS = [
    pytest.param(RLELossless, {}, id="rle"),
    pytest.param(JPEGLSLossless, {}, id="jpeg-ls"),
    pytest.param(JPEG2000Lossless, {}, id="jpeg2000"),
]


@pytest.mark.parametrize(("syntax", "options"), LOSSLESS)
def test_pydicom_encoded_lossless(
    syntax: UID,
    options: dict[str, Any],
    make_dataset: MakeDataset,
    tmp_path: Path,
    crop_expected: np.ndarray,
) -> None:
    ds = make_dataset()
    ds.compress(syntax, **options)
    rg = roundtrip(ds, tmp_path)
    assert rg.meta.transfer_syntax_uid == syntax
    assert np.array_equal(rg.pixels, crop_expected)


@pytest.mark.parametrize(
    ("syntax", "options", "max_units"),
    [
        pytest.param(JPEGLSNearLossless, {"jls_error": 3}, 3, id="jpeg-ls-near-lossless"),
        pytest.param(JPEG2000, {"j2k_cr": [10]}, 2000, id="jpeg2000-lossy"),
    ],
)
def test_pydicom_encoded_lossy(
    syntax: UID,
    options: dict[str, Any],
    max_units: int,
    make_dataset: MakeDataset,
    tmp_path: Path,
    crop_expected: np.ndarray,
) -> None:
    ds = make_dataset()
    ds.compress(syntax, **options)
    rg = roundtrip(ds, tmp_path)
    diff = np.abs(rg.pixels - crop_expected)
    assert diff.max() <= max_units * UNIT + 1e-6
    assert 0 < diff.mean() < 0.01


@pytest.mark.parametrize(
    "syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless], ids=["rle", "jpeg-ls", "jpeg2000"]
)
def test_signed_pixels_in_compressed_streams(
    syntax: UID,
    make_dataset: MakeDataset,
    crop_stored: np.ndarray,
    tmp_path: Path,
    crop_expected: np.ndarray,
) -> None:
    signed = (crop_stored.astype(np.int32) - 16384).astype(np.int16)
    ds = make_dataset(signed, RescaleIntercept=16384, RescaleSlope=1)
    ds.compress(syntax)
    rg = roundtrip(ds, tmp_path)
    np.testing.assert_allclose(rg.pixels, crop_expected, atol=1e-6)


def test_jpeg2000_unsigned_codestream_for_signed_pixels(
    make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path, crop_expected: np.ndarray
) -> None:
    # Some encoders write the two's-complement bit pattern as an *unsigned* 15-bit
    # codestream while the header says Pixel Representation 1.
    signed = (crop_stored.astype(np.int32) - 16384).astype(np.int16)
    pattern = (signed.view(np.uint16) & 0x7FFF).astype(np.uint16)
    ds = make_dataset(pattern)
    ds.compress(JPEG2000Lossless)
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = 16384
    ds.RescaleSlope = 1
    rg = roundtrip(ds, tmp_path)
    np.testing.assert_allclose(rg.pixels, crop_expected, atol=1e-6)


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless], ids=["rle", "jpeg2000"])
def test_compressed_multiframe_first_frame(
    syntax: UID,
    make_dataset: MakeDataset,
    crop_stored: np.ndarray,
    tmp_path: Path,
    crop_expected: np.ndarray,
) -> None:
    frames = np.stack([crop_stored, 32767 - crop_stored]).astype(np.uint16)
    ds = make_dataset(frames, Modality="OT", SOPClassUID="1.2.840.10008.5.1.4.1.1.7.3")
    ds.compress(syntax)
    rg = roundtrip(ds, tmp_path)
    np.testing.assert_allclose(rg.pixels, crop_expected, atol=1e-6)
    assert any("2 frames" in w for w in rg.warnings)


# --- dcmtk-encoded (independent encoder) ------------------------------------------------


@needs_dcmtk
@pytest.mark.dcmtk
@pytest.mark.parametrize(
    ("tool", "args", "syntax"),
    [
        pytest.param("dcmcjpeg", ["+e1"], JPEGLosslessSV1, id="jpeg-lossless-sv1"),
        pytest.param("dcmcjpeg", ["+el", "+sv", "6"], JPEGLossless, id="jpeg-lossless-sv6"),
        pytest.param("dcmcjpls", ["+el"], JPEGLSLossless, id="jpeg-ls"),
        pytest.param("dcmcrle", [], RLELossless, id="rle"),
    ],
)
def test_dcmtk_lossless(
    tool: str,
    args: list[str],
    syntax: UID,
    make_dataset: MakeDataset,
    tmp_path: Path,
    crop_expected: np.ndarray,
) -> None:
    src = write(make_dataset(), tmp_path / "src.dcm")
    dst = tmp_path / "dst.dcm"
    dcmtk(tool, *args, src, dst)
    rg = load_file(dst)
    assert rg.meta.transfer_syntax_uid == syntax
    np.testing.assert_allclose(rg.pixels, crop_expected, atol=1e-6)
    # the same stream without file meta: the codec is recognised from the codestream
    raw = write(
        _strip_meta(pydicom.dcmread(dst)),
        tmp_path / "raw",
        enforce_file_format=False,
        implicit_vr=True,
    )
    rg = load_file(raw)
    assert rg.meta.transfer_syntax_uid == syntax
    np.testing.assert_allclose(rg.pixels, crop_expected, atol=1e-6)


@needs_dcmtk
@pytest.mark.dcmtk
def test_dcmtk_jpeg_baseline_of_8bit_nih_dx(nih_dx_path: Path, tmp_path: Path) -> None:
    dst = tmp_path / "baseline.dcm"
    dcmtk("dcmcjpeg", "+eb", "+q", "90", nih_dx_path, dst)
    original = load_file(nih_dx_path)
    rg = load_file(dst)
    assert rg.meta.transfer_syntax_uid == JPEGBaseline8Bit
    diff = np.abs(rg.pixels - original.pixels)
    assert diff.mean() < 0.01 and np.percentile(diff, 99) < 0.05
    raw = write(
        _strip_meta(pydicom.dcmread(dst)),
        tmp_path / "raw",
        enforce_file_format=False,
        implicit_vr=True,
    )
    guessed = load_file(raw)
    assert guessed.meta.transfer_syntax_uid == JPEGBaseline8Bit
    assert np.array_equal(guessed.pixels, rg.pixels)


@needs_dcmtk
@pytest.mark.dcmtk
def test_dcmtk_jpeg_extended_12bit(
    make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path
) -> None:
    twelve = (crop_stored >> 3).astype(np.uint16)
    native = make_dataset(twelve, bits_stored=12, WindowCenter=C12, WindowWidth=W12)
    src = write(native, tmp_path / "src.dcm")
    dst = tmp_path / "extended.dcm"
    dcmtk("dcmcjpeg", "+ee", "+q", "95", src, dst)
    reference = load_file(src)
    rg = load_file(dst)
    assert rg.meta.transfer_syntax_uid == JPEGExtended12Bit
    diff = np.abs(rg.pixels - reference.pixels)
    assert diff.mean() < 0.005 and diff.max() < 0.05


# --- no preamble, no file meta: old CR archives -----------------------------------------


def _strip_meta(ds: pydicom.Dataset) -> pydicom.Dataset:
    ds.file_meta = FileMetaDataset()
    ds.preamble = None
    return ds


@pytest.mark.parametrize(
    ("implicit", "little", "guess"),
    [
        pytest.param(True, True, ImplicitVRLittleEndian, id="implicit-le"),
        pytest.param(False, True, ExplicitVRLittleEndian, id="explicit-le"),
        pytest.param(False, False, ExplicitVRBigEndian, id="explicit-be"),
    ],
)
def test_native_without_preamble_or_file_meta(
    implicit: bool,
    little: bool,
    guess: UID,
    make_dataset: MakeDataset,
    crop_stored: np.ndarray,
    tmp_path: Path,
    crop_expected: np.ndarray,
) -> None:
    ds = _strip_meta(make_dataset())
    if not little:
        ds.PixelData = crop_stored.astype(">u2").tobytes()
    path = write(
        ds, tmp_path / "raw", enforce_file_format=False, implicit_vr=implicit, little_endian=little
    )
    assert path.read_bytes()[128:132] != b"DICM" and path.read_bytes()[:2] == (
        b"\x08\x00" if little else b"\x00\x08"
    )
    rg = load_file(path)
    assert rg.meta.transfer_syntax_uid == guess
    assert np.array_equal(rg.pixels, crop_expected)
    assert any("no transfer syntax" in w for w in rg.warnings)


@pytest.mark.parametrize(
    ("syntax", "guess"),
    [
        pytest.param(JPEG2000Lossless, JPEG2000, id="j2k"),  # same decoder for both
        pytest.param(JPEGLSLossless, JPEGLSLossless, id="jls"),
        pytest.param(RLELossless, RLELossless, id="rle"),
    ],
)
def test_encapsulated_without_file_meta_guesses_codec(
    syntax: UID, guess: UID, make_dataset: MakeDataset, tmp_path: Path, crop_expected: np.ndarray
) -> None:
    ds = make_dataset()
    ds.compress(syntax)
    path = write(_strip_meta(ds), tmp_path / "raw", enforce_file_format=False, implicit_vr=True)
    rg = load_file(path)
    assert rg.meta.transfer_syntax_uid == guess
    assert np.array_equal(rg.pixels, crop_expected)


def test_dicm_without_preamble(
    make_dataset: MakeDataset, tmp_path: Path, crop_expected: np.ndarray
) -> None:
    path = write(make_dataset(), tmp_path / "x.dcm")
    cut = tmp_path / "no_preamble.dcm"
    cut.write_bytes(path.read_bytes()[128:])
    assert np.array_equal(load_file(cut).pixels, crop_expected)
