"""The DICOM grey-level pipeline on the real RG1 chest CR and files derived from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.pixels.processing import convert_color_space
from pydicom.sequence import Sequence
from pydicom.uid import (
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    JPEGBaseline8Bit,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    SecondaryCaptureImageStorage,
)

from dxassist.imaging import Radiograph, load_bytes, load_file

from .conftest import (
    RG1_WINDOW,
    MakeDataset,
    PickImage,
    percentile_expected,
    window_expected,
    write,
)

C, W = RG1_WINDOW


def load_ds(ds: Dataset, tmp_path: Path, name: str = "derived.dcm") -> Radiograph:
    return load_file(write(ds, tmp_path / name))


# --- the real files --------------------------------------------------------------------


def test_rg1_real_cr(rg1_loaded: Radiograph, rg1_stored: np.ndarray) -> None:
    px = rg1_loaded.pixels
    assert px.dtype == np.float32 and px.shape == (1955, 1841)
    assert px.min() >= 0.0 and px.max() <= 1.0
    # MONOCHROME1 + RG1's window, computed independently of the loader and pydicom
    np.testing.assert_allclose(px, window_expected(rg1_stored, C, W, invert=True), atol=1e-6)
    # bone bright: the spine/mediastinum column is brighter than the lung fields
    spine = px[500:1300, 880:960].mean()
    lungs = (px[500:1100, 350:600].mean() + px[500:1100, 1250:1500].mean()) / 2
    assert spine > lungs + 0.1
    m = rg1_loaded.meta
    assert (m.source_format, m.modality, m.view_position, m.body_part) == (
        "dicom",
        "CR",
        "PA",
        "CHEST",
    )
    assert (m.photometric, m.bits_stored, m.rows, m.columns) == ("MONOCHROME1", 15, 1955, 1841)
    assert m.windowing == "window" and m.manufacturer == "Philips Medical Systems"
    assert m.patient_sex == "F" and m.patient_name == "CompressedSamples^RG1"
    assert m.pixel_spacing_mm is None  # RG1 says 0.000\0.000: not a spacing
    assert m.sop_class_uid == pydicom.uid.ComputedRadiographyImageStorage
    assert m.study_instance_uid == "1.3.6.1.4.1.5962.1.2.9.20040826185059.5457"
    assert m.transfer_syntax_uid == pydicom.uid.ExplicitVRLittleEndian
    assert rg1_loaded.warnings == []


def test_rg1_jpeg2000_lossless_equals_uncompressed(
    rg1_j2k_path: str, rg1_loaded: Radiograph
) -> None:
    j2k = load_file(rg1_j2k_path)
    assert j2k.meta.transfer_syntax_uid == pydicom.uid.JPEG2000Lossless
    assert np.array_equal(j2k.pixels, rg1_loaded.pixels)


def test_nih_secondary_capture_dx(nih_dx_path: Path) -> None:
    rg = load_file(nih_dx_path)
    raw = pydicom.dcmread(nih_dx_path).pixel_array
    # 8-bit MONOCHROME2 without window: robust percentile window
    assert rg.meta.windowing == "percentile"
    np.testing.assert_allclose(rg.pixels, percentile_expected(raw, invert=False), atol=1e-6)
    m = rg.meta
    assert (m.modality, m.photometric, m.bits_stored, m.rows, m.columns) == (
        "DX",
        "MONOCHROME2",
        8,
        1024,
        1024,
    )
    assert m.sop_class_uid == SecondaryCaptureImageStorage
    assert m.transfer_syntax_uid == pydicom.uid.ImplicitVRLittleEndian
    assert m.patient_age_years == 81 and m.patient_sex == "M"
    assert any("PatientAge '81'" in w for w in rg.warnings)


# --- photometric interpretation and LUTs -----------------------------------------------


def test_crop_reproduces_the_original(
    make_dataset: MakeDataset, tmp_path: Path, crop_expected: np.ndarray
) -> None:
    rg = load_ds(make_dataset(), tmp_path)
    assert np.array_equal(rg.pixels, crop_expected)


def test_monochrome2_reencoding_gives_same_pixels(
    make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path, crop_expected: np.ndarray
) -> None:
    inverted = (32767 - crop_stored.astype(np.int32)).astype(np.uint16)
    # the window mirrored onto the inverted values: c' = 32767 - c + 1
    ds = make_dataset(inverted, "MONOCHROME2", WindowCenter=32767 - C + 1, WindowWidth=W)
    rg = load_ds(ds, tmp_path)
    assert rg.meta.photometric == "MONOCHROME2"
    np.testing.assert_allclose(rg.pixels, crop_expected, atol=1e-6)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_presentation_lut_shape_inverse(
    photometric: str, make_dataset: MakeDataset, tmp_path: Path, crop_expected: np.ndarray
) -> None:
    # MONOCHROME2 + INVERSE displays like MONOCHROME1; MONOCHROME1 + INVERSE (what the DX
    # IOD requires) means the same single inversion, not a double one.
    ds = make_dataset(photometric=photometric, PresentationLUTShape="INVERSE")
    rg = load_ds(ds, tmp_path)
    np.testing.assert_allclose(rg.pixels, crop_expected, atol=1e-6)


def test_presentation_lut_shape_identity_monochrome2(
    make_dataset: MakeDataset, tmp_path: Path, crop_expected: np.ndarray
) -> None:
    ds = make_dataset(photometric="MONOCHROME2", PresentationLUTShape="IDENTITY")
    np.testing.assert_allclose(load_ds(ds, tmp_path).pixels, 1 - crop_expected, atol=1e-6)


def _voi_lut_item(first: int, lut: np.ndarray, bits: int) -> Dataset:
    item = Dataset()
    item.add_new(0x00283002, "US", [len(lut), first, bits])  # LUT Descriptor
    item.add_new(0x00283006, "OW", lut.astype("<u2").tobytes())  # LUT Data
    item.LUTExplanation = "test curve"
    return item


def test_voi_lut_sequence_is_applied(
    make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path
) -> None:
    first, n = 8000, 4096
    lut = np.rint(4095 * np.sin(np.pi / 2 * np.arange(n) / (n - 1))).astype(np.uint16)
    ds = make_dataset(VOILUTSequence=Sequence([_voi_lut_item(first, lut, 12)]))
    rg = load_ds(ds, tmp_path)  # the window also present in RG1 must lose to the LUT
    assert rg.meta.windowing == "voi_lut"
    index = np.clip(crop_stored.astype(np.int64) - first, 0, n - 1)
    expected = 1.0 - lut[index] / 4095.0
    np.testing.assert_allclose(rg.pixels, expected, atol=1e-6)
    assert (crop_stored < first).any() and (crop_stored >= first + n).any()  # both clips used
    assert rg.warnings == []


def test_voi_lut_declaring_more_bits_than_used(
    make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path
) -> None:
    # A common vendor bug: 16 bits per entry declared, 12-bit values stored.
    lut = np.rint(np.linspace(0, 4095, 32768)).astype(np.uint16)
    ds = make_dataset(VOILUTSequence=Sequence([_voi_lut_item(0, lut, 16)]))
    rg = load_ds(ds, tmp_path)
    expected = 1.0 - lut[crop_stored] / 4095.0
    np.testing.assert_allclose(rg.pixels, expected, atol=1e-6)
    assert any("VOI LUT declares 16 bits" in w for w in rg.warnings)


def test_first_of_several_windows(
    make_dataset: MakeDataset, tmp_path: Path, crop_expected: np.ndarray
) -> None:
    ds = make_dataset(WindowCenter=[C, 5000], WindowWidth=[W, 2000])
    rg = load_ds(ds, tmp_path)
    assert rg.meta.windowing == "window"
    np.testing.assert_allclose(rg.pixels, crop_expected, atol=1e-6)


def test_narrow_window(make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path) -> None:
    ds = make_dataset(WindowCenter=12000, WindowWidth=6000)
    rg = load_ds(ds, tmp_path)
    expected = window_expected(crop_stored, 12000, 6000, invert=True)
    np.testing.assert_allclose(rg.pixels, expected, atol=1e-6)
    assert (rg.pixels == 0).any() and (rg.pixels == 1).any()


def test_percentile_window_without_voi(
    make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path
) -> None:
    rg = load_ds(make_dataset(WindowCenter=None, WindowWidth=None), tmp_path)
    assert rg.meta.windowing == "percentile"
    expected = percentile_expected(crop_stored, invert=True)
    np.testing.assert_allclose(rg.pixels, expected, atol=1e-6)


def test_rescale_slope_intercept_feeds_the_window(
    make_dataset: MakeDataset, tmp_path: Path, crop_expected: np.ndarray
) -> None:
    # modality value = 0.5 * stored + 100, the window moved to match: if the rescale
    # were not applied before the window, the pixels would differ.
    ds = make_dataset(
        RescaleSlope=0.5,
        RescaleIntercept=100,
        WindowCenter=100.5 + 0.5 * (C - 0.5),
        WindowWidth=0.5 * (W - 1) + 1,
    )
    np.testing.assert_allclose(load_ds(ds, tmp_path).pixels, crop_expected, atol=1e-6)


def test_negative_rescale_slope(
    make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path, crop_expected: np.ndarray
) -> None:
    # stored values inverted, slope -1 inverts them back: RG1's window applies unchanged
    stored = (32767 - crop_stored.astype(np.int32)).astype(np.uint16)
    ds = make_dataset(stored, RescaleSlope=-1, RescaleIntercept=32767)
    np.testing.assert_allclose(load_ds(ds, tmp_path).pixels, crop_expected, atol=1e-6)


def test_modality_lut_sequence(
    make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path, crop_expected: np.ndarray
) -> None:
    # Stored values inverted, a Modality LUT that inverts them back: RG1's window applies.
    stored = (32767 - crop_stored.astype(np.int32)).astype(np.uint16)
    item = Dataset()
    item.add_new(0x00283002, "US", [32768, 0, 16])
    item.add_new(0x00283006, "OW", (32767 - np.arange(32768)).astype("<u2").tobytes())
    item.ModalityLUTType = "US"
    ds = make_dataset(stored, ModalityLUTSequence=Sequence([item]))
    np.testing.assert_allclose(load_ds(ds, tmp_path).pixels, crop_expected, atol=1e-6)


def test_signed_pixels_with_intercept(
    make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path, crop_expected: np.ndarray
) -> None:
    signed = (crop_stored.astype(np.int32) - 16384).astype(np.int16)
    assert signed.min() < 0
    ds = make_dataset(signed, RescaleIntercept=16384, RescaleSlope=1)
    assert ds.PixelRepresentation == 1
    np.testing.assert_allclose(load_ds(ds, tmp_path).pixels, crop_expected, atol=1e-6)


# --- bits: junk above Bits Stored, High Bit ----------------------------------------------


def test_junk_in_unused_high_bit_is_masked(
    make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path, crop_expected: np.ndarray
) -> None:
    ds = make_dataset()
    ds.PixelData = (crop_stored | 0x8000).astype("<u2").tobytes()
    rg = load_ds(ds, tmp_path)
    assert np.array_equal(rg.pixels, crop_expected)


def test_junk_above_signed_12_bit_values_is_ignored_and_sign_extended(
    make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path
) -> None:
    signed = ((crop_stored >> 3).astype(np.int16) - 2048).astype(np.int16)  # -2048..2047
    clean = make_dataset(signed, bits_stored=12, WindowCenter=None, WindowWidth=None)
    expected = percentile_expected(signed, invert=True)
    np.testing.assert_allclose(load_ds(clean, tmp_path, "clean.dcm").pixels, expected, atol=1e-6)
    junk = make_dataset(signed, bits_stored=12, WindowCenter=None, WindowWidth=None)
    raw = (signed.view(np.uint16) & 0x0FFF) | 0xA000  # bits 12-15 = 1010, unrelated to sign
    junk.PixelData = raw.astype("<u2").tobytes()
    np.testing.assert_allclose(load_ds(junk, tmp_path, "junk.dcm").pixels, expected, atol=1e-6)


def test_high_bit_above_bits_stored_minus_one(
    make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path, crop_expected: np.ndarray
) -> None:
    # ACR-NEMA style: 15 bits stored in bits 1..15 (High Bit 15), bit 0 junk.
    ds = make_dataset(HighBit=15)
    ds.PixelData = ((crop_stored << 1) | 1).astype("<u2").tobytes()
    np.testing.assert_allclose(load_ds(ds, tmp_path).pixels, crop_expected, atol=1e-6)


# --- SOP classes, frames, colour --------------------------------------------------------


def test_dx_for_processing_without_window(
    make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path
) -> None:
    ds = make_dataset(
        Modality="DX",
        SOPClassUID=DigitalXRayImageStorageForProcessing,
        PresentationIntentType="FOR PROCESSING",
        WindowCenter=None,
        WindowWidth=None,
    )
    ds.file_meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForProcessing
    rg = load_ds(ds, tmp_path)
    assert rg.meta.presentation_intent == "FOR PROCESSING" and rg.meta.modality == "DX"
    np.testing.assert_allclose(rg.pixels, percentile_expected(crop_stored, invert=True), atol=1e-6)
    assert any("FOR PROCESSING" in w for w in rg.warnings)


def test_dx_for_presentation_mono2_with_inverse_and_window(
    make_dataset: MakeDataset, tmp_path: Path, crop_expected: np.ndarray
) -> None:
    ds = make_dataset(
        photometric="MONOCHROME2",
        Modality="DX",
        SOPClassUID=DigitalXRayImageStorageForPresentation,
        PresentationIntentType="FOR PRESENTATION",
        PresentationLUTShape="INVERSE",
    )
    rg = load_ds(ds, tmp_path)
    assert rg.meta.presentation_intent == "FOR PRESENTATION"
    np.testing.assert_allclose(rg.pixels, crop_expected, atol=1e-6)


def test_multiframe_takes_first_frame_with_warning(
    make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path, crop_expected: np.ndarray
) -> None:
    frames = np.stack([crop_stored, 32767 - crop_stored]).astype(np.uint16)
    ds = make_dataset(
        frames,
        Modality="OT",
        SOPClassUID=MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    )
    assert ds.NumberOfFrames == 2
    rg = load_ds(ds, tmp_path)
    assert rg.pixels.ndim == 2 and rg.meta.number_of_frames == 2
    np.testing.assert_allclose(rg.pixels, crop_expected, atol=1e-6)
    assert any("2 frames" in w for w in rg.warnings)


@pytest.fixture
def kermany_rgb(pick_image: PickImage) -> np.ndarray:
    path = pick_image("kermany")
    return np.asarray(Image.open(path).convert("RGB"))


def _luma(rgb: np.ndarray) -> np.ndarray:
    grey: np.ndarray = rgb[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return grey / 255.0


def _colour_ds(make_dataset: MakeDataset, rgb: np.ndarray, photometric: str) -> Dataset:
    ds = make_dataset(
        rgb,
        photometric,
        8,
        Modality="OT",
        SOPClassUID=SecondaryCaptureImageStorage,
        WindowCenter=None,
        WindowWidth=None,
    )
    return ds


def test_rgb_dicom_to_grey(
    make_dataset: MakeDataset, kermany_rgb: np.ndarray, tmp_path: Path
) -> None:
    # make the colour channels differ so that the weighting matters
    rgb = kermany_rgb.copy()
    rgb[..., 0] = rgb[..., 0] // 2
    rg = load_ds(_colour_ds(make_dataset, rgb, "RGB"), tmp_path)
    np.testing.assert_allclose(rg.pixels, _luma(rgb), atol=1e-6)
    assert rg.meta.photometric == "RGB" and rg.meta.windowing is None


def test_ybr_full_dicom_to_grey(
    make_dataset: MakeDataset, kermany_rgb: np.ndarray, tmp_path: Path
) -> None:
    ybr = convert_color_space(kermany_rgb, "RGB", "YBR_FULL")
    rg = load_ds(_colour_ds(make_dataset, ybr, "YBR_FULL"), tmp_path)
    assert np.abs(rg.pixels - _luma(kermany_rgb)).max() <= 1.5 / 255


def test_palette_colour_dicom_to_grey(
    make_dataset: MakeDataset, crop_expected: np.ndarray, tmp_path: Path
) -> None:
    index = np.rint(crop_expected * 255).astype(np.uint8)
    ds = make_dataset(
        index,
        "MONOCHROME2",
        8,
        Modality="OT",
        SOPClassUID=SecondaryCaptureImageStorage,
        WindowCenter=None,
        WindowWidth=None,
    )
    ds.PhotometricInterpretation = "PALETTE COLOR"
    ramp = (np.arange(256) * 257).astype("<u2").tobytes()  # grey palette, 16-bit entries
    for offset in (1, 2, 3):  # red, green, blue
        ds.add_new(0x00281100 + offset, "US", [256, 0, 16])  # LUT descriptor
        ds.add_new(0x00281200 + offset, "OW", ramp)  # LUT data
    rg = load_ds(ds, tmp_path)
    np.testing.assert_allclose(rg.pixels, index / 255.0, atol=1e-6)


def test_load_bytes_equals_load_file(
    make_dataset: MakeDataset, tmp_path: Path, crop_expected: np.ndarray
) -> None:
    path = write(make_dataset(), tmp_path / "x.dcm")
    rg = load_bytes(path.read_bytes(), "upload.dcm")
    assert np.array_equal(rg.pixels, crop_expected)


@pytest.mark.parametrize(
    ("bits", "shift"),
    [
        pytest.param(8, -7, id="8-bit"),
        pytest.param(12, -3, id="12-bit"),
        pytest.param(16, 1, id="16-bit"),
    ],
)
def test_bits_stored_8_to_16(
    bits: int, shift: int, make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path
) -> None:
    values = crop_stored >> -shift if shift < 0 else crop_stored << shift
    dtype = np.uint8 if bits == 8 else np.uint16
    ds = make_dataset(
        values.astype(dtype), "MONOCHROME2", bits, WindowCenter=None, WindowWidth=None
    )
    rg = load_ds(ds, tmp_path)
    assert rg.meta.bits_stored == bits
    np.testing.assert_allclose(rg.pixels, percentile_expected(values, invert=False), atol=1e-6)


def test_presentation_lut_sequence(
    make_dataset: MakeDataset, crop_stored: np.ndarray, tmp_path: Path
) -> None:
    item = Dataset()
    item.add_new(0x00283002, "US", [4096, 0, 12])
    item.add_new(0x00283006, "OW", (4095 - np.arange(4096)).astype("<u2").tobytes())
    ds = make_dataset(photometric="MONOCHROME2", PresentationLUTSequence=Sequence([item]))
    rg = load_ds(ds, tmp_path)
    # an inverting presentation LUT on a MONOCHROME2 image: like RG1's MONOCHROME1 display
    expected = window_expected(crop_stored, C, W, invert=True)
    assert np.abs(rg.pixels - expected).max() <= 1 / 4095 + 1e-6


def test_jpeg_baseline_colour_dicom(
    make_dataset: MakeDataset, pick_image: PickImage, tmp_path: Path
) -> None:
    # What secondary-capture converters do: wrap the JPEG file's codestream as it is.
    path = pick_image("kermany")
    jpeg = path.read_bytes()
    rgb = np.asarray(Image.open(path).convert("RGB"))
    ds = make_dataset(
        rgb,
        "RGB",
        8,
        Modality="OT",
        SOPClassUID=SecondaryCaptureImageStorage,
        WindowCenter=None,
        WindowWidth=None,
    )
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PixelData = encapsulate([jpeg])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    rg = load_ds(ds, tmp_path)
    assert rg.meta.transfer_syntax_uid == JPEGBaseline8Bit
    plain = load_file(path)
    assert np.abs(rg.pixels - plain.pixels).mean() < 2 / 255
