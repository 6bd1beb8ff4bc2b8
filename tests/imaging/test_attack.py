"""Hostile and careless input to the loader: every case either loads to finite pixels in
[0, 1] (with a warning when the file had to be worked around) or raises an InputError whose
message says what is wrong and what to do. Never a hang, a NaN or a silent wrong image.

All inputs are derived at test time from RG1 (pydicom-data) and the shared PNG/JPEG files.
"""

from __future__ import annotations

import copy
import os
import struct
import threading
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, get_frame
from pydicom.fileset import FileSet
from pydicom.sequence import Sequence

import dxassist.imaging.loader as loader_module
from dxassist.errors import DxAssistError, InputError, NotARadiographError, UnreadableFileError
from dxassist.imaging import Radiograph, load_file

from .conftest import MakeDataset, PickImage, write


def expect(error: type[DxAssistError], path: Path, *phrases: str) -> str:
    with pytest.raises(error) as info:
        load_file(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    for phrase in phrases:
        assert phrase.lower() in message.lower(), message
    assert isinstance(info.value, InputError) and info.value.exit_code == 3
    return message


def sane(rg: Radiograph) -> Radiograph:
    assert rg.pixels.ndim == 2 and rg.pixels.dtype == np.float32
    assert np.isfinite(rg.pixels).all()
    assert 0.0 <= rg.pixels.min() < rg.pixels.max() <= 1.0
    return rg


def with_values(ds: Dataset, **values: Any) -> Dataset:
    """Set (possibly invalid) values without pydicom's validation warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for keyword, value in values.items():
            setattr(ds, keyword, value)
    return ds


# --- things that are not regular files ------------------------------------------------


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "scan.dcm"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def load() -> None:
        try:
            load_file(fifo)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "load_file blocked on a FIFO"
    assert isinstance(outcome[0], UnreadableFileError)
    assert "named pipe (FIFO), not a regular file" in str(outcome[0])


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_devices_are_refused_before_reading(device: str) -> None:
    if not Path(device).exists():
        pytest.skip(f"{device} not available")
    expect(UnreadableFileError, Path(device), "character device, not a regular file")


def test_oversized_file_is_refused_before_reading(
    rg1_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loader_module, "MAX_FILE_BYTES", 1 << 20)
    # RG1 is 7 MB: over the (lowered) limit, so it must not be read at all
    expect(UnreadableFileError, Path(rg1_path), "larger than any chest radiograph")


def test_symlink_loop_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "a.dcm").symlink_to(tmp_path / "b.dcm")
    (tmp_path / "b.dcm").symlink_to(tmp_path / "a.dcm")
    expect(UnreadableFileError, tmp_path / "a.dcm", "symbolic links", "check the path")


# --- header values that would give NaN, infinity or a blank image ---------------------


@pytest.mark.parametrize(
    "values",
    [
        {"RescaleSlope": "NaN", "RescaleIntercept": "0"},
        {"RescaleSlope": "inf", "RescaleIntercept": "0"},
        {"RescaleSlope": "1e308", "RescaleIntercept": "0"},
        {"RescaleSlope": "1", "RescaleIntercept": "-inf"},
    ],
    ids=["slope-nan", "slope-inf", "slope-overflow", "intercept-inf"],
)
def test_rescale_giving_nan_or_infinity_is_refused(
    values: dict[str, str], make_dataset: MakeDataset, tmp_path: Path
) -> None:
    ds = with_values(make_dataset(), **values)
    path = write(ds, tmp_path / "x.dcm")
    expect(UnreadableFileError, path, "Rescale Slope/Intercept", "NaN or infinity", "export")


@pytest.mark.parametrize("window", [True, False], ids=["with-window", "without-window"])
def test_rescale_slope_zero_is_refused(
    window: bool, make_dataset: MakeDataset, tmp_path: Path
) -> None:
    ds = make_dataset(RescaleSlope=0, RescaleIntercept=100)
    if not window:
        del ds.WindowCenter, ds.WindowWidth
    expect(UnreadableFileError, write(ds, tmp_path / "x.dcm"), "Rescale Slope is 0")


@pytest.mark.parametrize(
    ("center", "width"),
    [("nan", "30000"), ("15000", "nan"), ("15000", "inf"), ("1e308", "30000")],
    ids=["center-nan", "width-nan", "width-inf", "center-outside"],
)
def test_unusable_window_falls_back_to_percentile(
    center: str, width: str, make_dataset: MakeDataset, tmp_path: Path
) -> None:
    bad = with_values(make_dataset(), WindowCenter=center, WindowWidth=width)
    rg = sane(load_file(write(bad, tmp_path / "bad.dcm")))
    plain = load_file(write(make_dataset(WindowCenter=None, WindowWidth=None), tmp_path / "p"))
    assert rg.meta.windowing == "percentile"
    assert np.array_equal(rg.pixels, plain.pixels)
    assert any("Window Center/Width" in w and "percentile window" in w for w in rg.warnings)


def test_constant_voi_lut_falls_back(make_dataset: MakeDataset, tmp_path: Path) -> None:
    ds = make_dataset(WindowCenter=None, WindowWidth=None)
    item = Dataset()
    item.LUTDescriptor = [256, 0, 16]
    item.add_new(0x00283006, "US", [7] * 256)  # every stored value -> the same grey
    ds.VOILUTSequence = Sequence([item])
    rg = sane(load_file(write(ds, tmp_path / "x.dcm")))
    assert rg.meta.windowing == "percentile"
    assert any("VOI LUT Sequence would map every pixel" in w for w in rg.warnings)


def test_presentation_lut_with_zero_bits_is_ignored(
    make_dataset: MakeDataset, crop_expected: np.ndarray, tmp_path: Path
) -> None:
    ds = make_dataset()
    item = Dataset()
    item.LUTDescriptor = [256, 0, 0]  # 0 bits per entry: dividing by 2**0 - 1 = 0
    item.add_new(0x00283006, "US", list(range(256)))
    ds.PresentationLUTSequence = Sequence([item])
    rg = sane(load_file(write(ds, tmp_path / "x.dcm")))
    assert np.array_equal(rg.pixels, crop_expected)
    assert any("Presentation LUT Sequence could not be applied" in w for w in rg.warnings)


# --- headers that do not describe the pixel data --------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"Columns": 511},
        {"Rows": 256},
        {"BitsAllocated": 8, "BitsStored": 8, "HighBit": 7},
        {"PixelData": "doubled"},
    ],
    ids=["columns-511", "rows-half", "bits-allocated-8", "two-frames-of-data"],
)
def test_header_not_matching_pixel_data_length_is_refused(
    change: dict[str, Any], make_dataset: MakeDataset, tmp_path: Path
) -> None:
    # pydicom would drop the excess as "padding" and return a sheared or cropped image
    ds = make_dataset()
    for keyword, value in change.items():
        setattr(ds, keyword, ds.PixelData * 2 if value == "doubled" else value)
    expect(
        UnreadableFileError,
        write(ds, tmp_path / "x.dcm"),
        "header does not match the pixel data",
        "export the image again",
    )


def test_one_pad_byte_after_odd_length_pixel_data_is_fine(
    make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path
) -> None:
    column = (crop_stored[:255, :1] >> 7).astype(np.uint8)  # 255 bytes + 1 pad byte
    ds = make_dataset(column, photometric="MONOCHROME2", bits_stored=8)
    ds.WindowCenter, ds.WindowWidth = 128, 256
    rg = sane(load_file(write(ds, tmp_path / "x.dcm")))  # not "header does not match"
    assert rg.pixels.shape == (255, 1)


@pytest.mark.parametrize(
    ("rows", "columns"), [(65535, 65535), (0, 512)], ids=["4-gigapixels", "zero-rows"]
)
def test_absurd_image_size_is_refused_before_decoding(
    rows: int, columns: int, make_dataset: MakeDataset, tmp_path: Path
) -> None:
    ds = make_dataset(Rows=rows, Columns=columns)
    expect(UnreadableFileError, write(ds, tmp_path / "x.dcm"), "which no radiograph has")


def test_samples_per_pixel_3_on_monochrome_data_is_read_as_grey(
    make_dataset: MakeDataset, crop_expected: np.ndarray, tmp_path: Path
) -> None:
    ds = make_dataset(SamplesPerPixel=3)
    rg = sane(load_file(write(ds, tmp_path / "x.dcm")))
    assert np.array_equal(rg.pixels, crop_expected)
    assert any("SamplesPerPixel 3 contradicts MONOCHROME1" in w for w in rg.warnings)


def test_empty_pixel_data_element(make_dataset: MakeDataset, tmp_path: Path) -> None:
    ds = make_dataset()
    ds.PixelData = b""
    expect(UnreadableFileError, write(ds, tmp_path / "x.dcm"), "empty Pixel Data", "export")


def test_dicomdir_is_named_as_such(make_dataset: MakeDataset, tmp_path: Path) -> None:
    fileset = FileSet()
    fileset.add(make_dataset())
    fileset.write(tmp_path / "cd")
    expect(NotARadiographError, tmp_path / "cd" / "DICOMDIR", "DICOMDIR", "image files it lists")


# --- decompression bombs: a small file claiming a huge image --------------------------


def test_jpeg2000_codestream_claiming_a_huge_image(rg1_j2k_path: str, tmp_path: Path) -> None:
    ds = pydicom.dcmread(rg1_j2k_path)
    frame = bytearray(get_frame(ds.PixelData, 0, number_of_frames=1))
    siz = frame.index(b"\xff\x4f\xff\x51")
    frame[siz + 8 : siz + 16] = struct.pack(">II", 60000, 60000)  # Xsiz, Ysiz
    ds.PixelData = encapsulate([bytes(frame)])
    # before the fix the decoder allocated ~7 GB for this 4 MB file
    expect(
        UnreadableFileError,
        write(ds, tmp_path / "bomb.dcm"),
        "compressed image is 60000x60000 pixels but the DICOM header says 1841x1955",
    )


def _png_with_size(data: bytes, width: int, height: int) -> bytes:
    ihdr = bytearray(data[16:29])
    ihdr[0:8] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)) & 0xFFFFFFFF)
    return data[:16] + bytes(ihdr) + crc + data[33:]


def _jpeg_with_size(data: bytes, width: int, height: int) -> bytes:
    sof = data.index(b"\xff\xc0")
    return data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]


@pytest.mark.parametrize(
    ("dataset", "patch", "label"),
    [("nih", _png_with_size, "PNG"), ("kermany", _jpeg_with_size, "JPEG")],
    ids=["png", "jpeg"],
)
def test_plain_image_header_claiming_a_huge_image(
    dataset: str, patch: Any, label: str, pick_image: PickImage, tmp_path: Path
) -> None:
    # 144 megapixels: under Pillow's own bomb limit, so it used to be decoded (3 GB)
    path = tmp_path / "bomb"
    path.write_bytes(patch(pick_image(dataset).read_bytes(), 12000, 12000))
    expect(UnreadableFileError, path, f"{label} header claims 12000x12000 pixels", "export")


def test_unidentifiable_png_message_is_clean(pick_image: PickImage, tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(_png_with_size(pick_image("nih").read_bytes(), 0, 0))
    message = expect(UnreadableFileError, path, "PNG file is corrupt", "export the image again")
    assert "BytesIO" not in message and " at 0x" not in message


def test_loaded_pixels_never_contain_nan(make_dataset: MakeDataset, tmp_path: Path) -> None:
    """Whatever the window/LUT values, a Radiograph is finite or an error is raised."""
    values = ["0", "-1", "1e-300", "1e300", "nan", "inf", "-inf", "65535", "1"]
    rng = np.random.default_rng(20261203)
    base = make_dataset(make_dataset().pixel_array[:64, :64].copy())
    for i in range(40):
        ds = copy.deepcopy(base)
        picked = {
            k: str(rng.choice(values))
            for k in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth")
        }
        with_values(ds, **picked)
        path = write(ds, tmp_path / f"x{i}.dcm")
        try:
            rg = load_file(path)
        except InputError as exc:
            assert str(exc).startswith(str(path))
            continue
        assert np.isfinite(rg.pixels).all(), picked
        assert 0.0 <= rg.pixels.min() <= rg.pixels.max() <= 1.0, picked
