"""PNG and JPEG radiographs: the real shared images and variants derived from them."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dxassist.imaging import load_bytes, load_file

from .conftest import PickImage


def _luma(rgb: np.ndarray) -> np.ndarray:
    grey: np.ndarray = rgb[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return grey / 255.0


def _png_bytes(image: Image.Image, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", **kwargs)
    return buf.getvalue()


@pytest.mark.parametrize("dataset", ["nih", "mhh", "covid-rdb", "ieee8023"])
def test_real_8bit_grey_png(dataset: str, pick_image: PickImage) -> None:
    path = pick_image(dataset)
    rg = load_file(path)
    grey = np.asarray(Image.open(path).convert("L"))
    assert rg.pixels.dtype == np.float32 and rg.pixels.shape == grey.shape
    np.testing.assert_allclose(rg.pixels, grey / 255.0, atol=1e-7)
    assert (rg.meta.source_format, rg.meta.photometric, rg.meta.bits_stored) == ("png", "L", 8)
    assert (rg.meta.rows, rg.meta.columns) == grey.shape


def test_real_rgb_jpeg(pick_image: PickImage) -> None:
    path = pick_image("kermany")
    rg = load_file(path)
    rgb = np.asarray(Image.open(path))
    assert rgb.ndim == 3
    np.testing.assert_allclose(rg.pixels, _luma(rgb), atol=1e-6)
    assert rg.meta.source_format == "jpeg" and rg.warnings == []


def test_16bit_png_keeps_16bit_precision(rg1_stored: np.ndarray, tmp_path: Path) -> None:
    sixteen = (rg1_stored[600:1112, 500:1012].astype(np.uint32) * 2 + 1).astype(np.uint16)
    path = tmp_path / "sixteen.png"
    Image.fromarray(sixteen).save(path)
    rg = load_file(path)
    assert rg.meta.bits_stored == 16
    np.testing.assert_array_equal(rg.pixels, (sixteen / 65535.0).astype(np.float32))
    assert len(np.unique(rg.pixels)) > 4 * 256  # not squeezed through 8 bits


def test_grey_jpeg(pick_image: PickImage) -> None:
    png = pick_image("nih")
    grey = Image.open(png).convert("L")
    buf = io.BytesIO()
    grey.save(buf, "JPEG", quality=95)
    rg = load_bytes(buf.getvalue(), "grey.jpg")
    assert rg.meta.photometric == "L"
    diff = np.abs(rg.pixels - np.asarray(grey) / 255.0)
    assert diff.mean() < 0.01 and diff.max() < 0.1


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "P"])
def test_colour_alpha_palette_png_equal_grey(mode: str, pick_image: PickImage) -> None:
    grey = Image.open(pick_image("nih")).convert("L")
    if mode == "RGBA":
        image = grey.convert("RGBA")
        alpha = np.random.default_rng(1).integers(0, 256, grey.size[::-1], dtype=np.uint8)
        image.putalpha(Image.fromarray(alpha))  # must be dropped, not blended
    else:
        image = grey.convert(mode)
    rg = load_bytes(_png_bytes(image), f"x_{mode}.png")
    np.testing.assert_allclose(rg.pixels, np.asarray(grey) / 255.0, atol=1e-6)
    assert rg.meta.photometric == mode


def test_colour_content_is_flagged(pick_image: PickImage) -> None:
    rgb = np.asarray(Image.open(pick_image("kermany")).convert("RGB")).copy()
    rgb[..., 2] = 255 - rgb[..., 2]  # a strongly coloured picture
    rg = load_bytes(_png_bytes(Image.fromarray(rgb)), "photo.png")
    np.testing.assert_allclose(rg.pixels, _luma(rgb), atol=1e-6)
    assert any("colour content" in w for w in rg.warnings)


def test_jpeg_exif_orientation_applied(pick_image: PickImage) -> None:
    grey = Image.open(pick_image("nih")).convert("L").crop((0, 0, 384, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    buf = io.BytesIO()
    grey.save(buf, "JPEG", quality=100, exif=exif)
    rg = load_bytes(buf.getvalue(), "phone.jpg")
    expected = np.rot90(np.asarray(grey), k=-1) / 255.0
    assert rg.pixels.shape == (384, 200)
    assert np.abs(rg.pixels - expected).mean() < 0.01
