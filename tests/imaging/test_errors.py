"""Bad input: each case raises the documented error with a message that says what to do."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import (
    BasicTextSRStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    JPEG2000Lossless,
    JPEGLSLossless,
    MRImageStorage,
    RLELossless,
    SecondaryCaptureImageStorage,
    UltrasoundImageStorage,
    generate_uid,
)

import dxassist.imaging.dicom as dicom_module
from dxassist.errors import (
    DxAssistError,
    InputError,
    MissingDecoderError,
    NotARadiographError,
    UnreadableFileError,
)
from dxassist.imaging import load_bytes, load_file

from .conftest import MakeDataset, PickImage, write


def expect(
    error: type[DxAssistError], *phrases: str, path: Path | None = None, data: bytes = b""
) -> str:
    """Load `path` (or `data`), assert the error type and phrases; return the message."""
    with pytest.raises(error) as info:
        if path is not None:
            load_file(path)
        else:
            load_bytes(data, "upload.bin")
    message = str(info.value)
    for phrase in phrases:
        assert phrase.lower() in message.lower(), message
    assert isinstance(info.value, InputError) and info.value.exit_code == 3
    return message


# --- not an image at all ----------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.dcm"
    path.write_bytes(b"")
    message = expect(UnreadableFileError, "file is empty", path=path)
    assert message.startswith(str(path))
    expect(UnreadableFileError, "file is empty", data=b"")


def test_directory(tmp_path: Path) -> None:
    expect(UnreadableFileError, "is a directory, not a file", path=tmp_path)


def test_missing_file(tmp_path: Path) -> None:
    expect(UnreadableFileError, "not found", path=tmp_path / "nope.dcm")


def test_text_file_renamed_dcm(tmp_path: Path) -> None:
    path = tmp_path / "report.dcm"
    path.write_text("Chest PA: lungs clear, no effusion.\n", encoding="utf-8")
    expect(UnreadableFileError, "not a DICOM, PNG or JPEG file", "text", path=path)


def test_other_image_format(pick_image: PickImage, tmp_path: Path) -> None:
    path = tmp_path / "xray.dcm"
    Image.open(pick_image("nih")).save(path, "TIFF")
    expect(UnreadableFileError, "not a DICOM, PNG or JPEG file", "TIFF", path=path)


# --- broken DICOM -----------------------------------------------------------------------


def test_truncated_dicom_mid_pixel_data(rg1_path: str, tmp_path: Path) -> None:
    data = Path(rg1_path).read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: len(data) * 2 // 3])
    expect(UnreadableFileError, "truncated", path=path)


def test_truncated_compressed_dicom(rg1_j2k_path: str, tmp_path: Path) -> None:
    data = Path(rg1_j2k_path).read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: len(data) - 1000])
    expect(UnreadableFileError, "truncated", path=path)


def test_truncated_before_pixel_data(
    make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path
) -> None:
    data = write(make_dataset(), tmp_path / "x.dcm").read_bytes()
    pixel_tag = data.rindex(b"\xe0\x7f\x10\x00")
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: pixel_tag + 5])  # cut inside the Pixel Data element header
    expect(UnreadableFileError, "truncated", path=path)


def test_garbage_after_dicom_preamble(tmp_path: Path) -> None:
    path = tmp_path / "bad.dcm"
    path.write_bytes(bytes(128) + b"DICM" + bytes(range(256)) * 4)
    expect(UnreadableFileError, "not a valid DICOM file", path=path)


def test_structured_report_has_no_pixel_data(tmp_path: Path) -> None:
    ds = Dataset()
    ds.SOPClassUID = BasicTextSRStorage
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "SR"
    ds.PatientName = "Test^Report"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = BasicTextSRStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = write(ds, tmp_path / "report.dcm", enforce_file_format=True)
    expect(NotARadiographError, "has no pixel data", "SR", path=path)


def test_image_header_without_pixel_data(rg1_dataset: Dataset, tmp_path: Path) -> None:
    header = rg1_dataset.copy()
    del header.PixelData
    path = write(header, tmp_path / "nopixels.dcm")
    expect(UnreadableFileError, "no pixel data", path=path)


@pytest.mark.parametrize(
    ("modality", "sop_class", "shown"),
    [
        pytest.param("CT", CTImageStorage, "modality CT is not a projection radiograph", id="ct"),
        pytest.param("MR", MRImageStorage, "modality MR is not a projection", id="mr"),
        pytest.param("US", UltrasoundImageStorage, "modality US is not", id="us"),
        pytest.param("NM", SecondaryCaptureImageStorage, "modality NM is not", id="nm"),
        pytest.param("PT", SecondaryCaptureImageStorage, "modality PT is not", id="pt"),
        pytest.param("MG", SecondaryCaptureImageStorage, "not a chest radiograph", id="mg"),
        pytest.param("OT", CTImageStorage, "modality CT", id="ct-sop-class-says-ot"),
        pytest.param("ZZ", SecondaryCaptureImageStorage, "modality ZZ is not", id="unknown"),
    ],
)
def test_not_a_radiograph(
    modality: str, sop_class: str, shown: str, make_dataset: MakeDataset, tmp_path: Path
) -> None:
    ds = make_dataset(Modality=modality, SOPClassUID=sop_class)
    ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.UID(sop_class)
    message = expect(NotARadiographError, shown, "CR/DX", path=write(ds, tmp_path / "x.dcm"))
    assert "dxassist reads chest X-rays (CR/DX)" in message


def test_missing_modality_is_read_with_warning(
    make_dataset: MakeDataset, tmp_path: Path, crop_expected: np.ndarray
) -> None:
    rg = load_file(write(make_dataset(Modality=None), tmp_path / "x.dcm"))
    assert np.array_equal(rg.pixels, crop_expected)
    assert any("no Modality" in w for w in rg.warnings)


# --- decoders ---------------------------------------------------------------------------


def test_transfer_syntax_without_any_decoder(make_dataset: MakeDataset, tmp_path: Path) -> None:
    # pydicom 3.0 has no JPEG XL decoder at all. pydicom will not write a transfer syntax
    # it does not know, so write HTJ2K and patch the UID (same length once padded).
    ds = make_dataset()
    ds.PixelData = encapsulate([b"\xff\x0a" + bytes(200)])  # JPEG XL codestream signature
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = HTJ2KLossless
    data = write(ds, tmp_path / "htj2k.dcm").read_bytes()
    jpeg_xl = "1.2.840.10008.1.2.4.110"
    path = tmp_path / "jxl.dcm"
    path.write_bytes(data.replace(HTJ2KLossless.encode() + b"\x00", jpeg_xl.encode() + b"\x00"))
    expect(MissingDecoderError, "JPEG XL Lossless", jpeg_xl, "no decoder", path=path)


@pytest.mark.parametrize(
    ("syntax", "name", "package"),
    [
        pytest.param(JPEGLSLossless, "JPEG-LS Lossless", "pyjpegls", id="jpeg-ls"),
        pytest.param(JPEG2000Lossless, "JPEG 2000", "pylibjpeg-openjpeg", id="jpeg2000"),
        pytest.param(RLELossless, "RLE Lossless", "pylibjpeg-rle", id="rle"),
    ],
)
def test_decoder_plugin_missing(
    syntax: pydicom.uid.UID,
    name: str,
    package: str,
    make_dataset: MakeDataset,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ds = make_dataset()
    ds.compress(syntax)
    path = write(ds, tmp_path / "x.dcm")
    # Simulate a site where the plugin packages are not installed.
    decoder = get_decoder(syntax)
    monkeypatch.setattr(decoder, "_available", {})
    monkeypatch.setattr(decoder, "_unavailable", {"plugin": (package,)})
    expect(MissingDecoderError, name, "install", package, path=path)


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, JPEGLSLossless], ids=["j2k", "jls"])
def test_corrupt_compressed_stream(
    syntax: pydicom.uid.UID, make_dataset: MakeDataset, tmp_path: Path
) -> None:
    ds = make_dataset()
    ds.compress(syntax)
    frame = bytearray(pydicom.encaps.get_frame(ds.PixelData, 0, number_of_frames=1))
    frame[2:40] = b"\x00" * 38  # wipe the main header (SIZ / SOF markers)
    ds.PixelData = encapsulate([bytes(frame)])
    expect(UnreadableFileError, "could not be decoded", "corrupt", path=write(ds, tmp_path / "x"))


def test_unexpected_exception_is_wrapped(
    make_dataset: MakeDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("simulated decoder bug")

    monkeypatch.setattr(dicom_module, "_stored_values", boom)
    path = write(make_dataset(), tmp_path / "x.dcm")
    message = expect(UnreadableFileError, "simulated decoder bug", path=path)
    assert message.startswith(str(path))


# --- broken PNG / JPEG ------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["nih", "kermany"])
def test_truncated_png_and_jpeg(dataset: str, pick_image: PickImage, tmp_path: Path) -> None:
    data = pick_image(dataset).read_bytes()
    path = tmp_path / "cut"
    path.write_bytes(data[: len(data) // 2])
    expect(UnreadableFileError, "truncated", path=path)


def test_corrupt_png(pick_image: PickImage, tmp_path: Path) -> None:
    data = bytearray(pick_image("nih").read_bytes())
    idat = data.index(b"IDAT")
    data[idat + 20 : idat + 120] = bytes(100)  # breaks the zlib stream and the CRC
    path = tmp_path / "bad.png"
    path.write_bytes(bytes(data))
    expect(UnreadableFileError, "PNG", path=path)


class _RustPanic(BaseException):
    """Stands in for pyo3_runtime.PanicException, which is not an Exception subclass."""


def test_decoder_panic_is_wrapped(
    make_dataset: MakeDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = make_dataset()
    ds.compress(RLELossless)
    path = write(ds, tmp_path / "x.dcm")

    def panic(src: bytes, runner: object) -> bytes:
        raise _RustPanic("index out of bounds")

    monkeypatch.setattr(get_decoder(RLELossless), "_available", {"rust": panic})
    expect(UnreadableFileError, "could not be decoded", "index out of bounds", path=path)


def test_mangled_files_raise_only_dxassist_errors(
    make_dataset: MakeDataset, crop_stored: np.ndarray, pick_image: PickImage
) -> None:
    seeds = [pick_image("nih").read_bytes(), pick_image("kermany").read_bytes()]
    for syntax in (None, RLELossless, JPEG2000Lossless, JPEGLSLossless):
        ds = make_dataset(crop_stored[:64, :64].copy())
        if syntax is not None:
            ds.compress(syntax)
        buf = io.BytesIO()
        ds.save_as(buf)
        seeds.append(buf.getvalue())
    rng = np.random.default_rng(20240601)
    for i in range(240):
        data = bytearray(seeds[i % len(seeds)])
        if i % 3 == 0:
            data = data[: rng.integers(0, len(data))]
        else:
            limit = len(data) if i % 3 == 1 else min(len(data), 1500)
            for _ in range(rng.integers(1, 12)):
                data[rng.integers(0, limit)] = rng.integers(0, 256)
        try:
            rg = load_bytes(bytes(data), f"mangled-{i}")
        except DxAssistError as exc:
            assert str(exc).startswith(f"mangled-{i}: ")
            continue
        assert rg.pixels.ndim == 2 and rg.pixels.dtype == np.float32
        assert np.isfinite(rg.pixels).all() and 0 <= rg.pixels.min() <= rg.pixels.max() <= 1
