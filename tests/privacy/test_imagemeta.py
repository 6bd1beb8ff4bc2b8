"""Metadata stripped from PNG and JPEG, pixels unchanged."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms
from PIL.PngImagePlugin import PngInfo

from dxassist.errors import UnreadableFileError
from dxassist.imaging import load_bytes
from dxassist.privacy.imagemeta import strip_image_metadata

PLANTED = [b"PHIEXIFARTIST", b"PHIXMPNAME", b"PHICOMMENT", b"PHITEXT", b"PHIITXT", b"PHIZTXT"]


def _exif(orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[0x013B] = "PHIEXIFARTIST"  # Artist
    exif[0x0132] = "2041:03:01 10:11:12"  # DateTime
    if orientation != 1:
        exif[0x0112] = orientation
    return exif.tobytes()


def _icc() -> bytes:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return bytes(profile.tobytes())


def _xmp() -> bytes:
    return (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
        b'02/22-rdf-syntax-ns#"><rdf:Description>PHIXMPNAME</rdf:Description></rdf:RDF>'
        b"</x:xmpmeta>"
    )


def _grey(shape: tuple[int, int] = (64, 48)) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def _png(mode: str = "L", orientation: int = 1) -> bytes:
    pixels = _grey()
    image = Image.fromarray(pixels).convert(mode)
    if mode == "I;16":
        image = Image.fromarray(pixels.astype(np.uint16) * 257)
    info = PngInfo()
    info.add_text("Comment", "PHITEXT")
    info.add_itxt("Author", "PHIITXT 王小东")
    info.add_text("Description", "PHIZTXT" * 20, zip=True)
    buf = io.BytesIO()
    image.save(buf, "PNG", pnginfo=info, exif=_exif(orientation), icc_profile=_icc())
    return buf.getvalue()


def _jpeg(mode: str = "L", orientation: int = 1, progressive: bool = False) -> bytes:
    image = Image.fromarray(_grey()).convert(mode)
    buf = io.BytesIO()
    image.save(
        buf,
        "JPEG",
        exif=_exif(orientation),
        icc_profile=_icc(),
        comment=b"PHICOMMENT",
        xmp=_xmp(),
        progressive=progressive,
        quality=90,
    )
    return buf.getvalue() + b"PHITRAILER"


def _decoded(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


def _texts(data: bytes) -> list[bytes]:
    return [p for p in [*PLANTED, b"PHITRAILER", "王小东".encode()] if p in data]


@pytest.mark.parametrize("mode", ["L", "RGB", "I;16"])
def test_png_pixels_identical_metadata_gone(mode: str) -> None:
    data = _png(mode)
    zipped = Image.open(io.BytesIO(data)).text  # the zTXt one is compressed: check decoded
    assert "PHIZTXT" in zipped["Description"]
    assert b"PHITEXT" in data and b"iCCP" in data and b"eXIf" in data
    clean = strip_image_metadata(data)
    assert not _texts(clean)
    for chunk in (b"tEXt", b"iTXt", b"zTXt", b"iCCP", b"eXIf"):
        assert chunk not in clean, chunk
    assert np.array_equal(_decoded(clean), _decoded(data))
    with Image.open(io.BytesIO(clean)) as image:
        assert not image.text and "icc_profile" not in image.info


@pytest.mark.parametrize(("mode", "progressive"), [("L", False), ("RGB", False), ("RGB", True)])
def test_jpeg_pixels_identical_metadata_gone(mode: str, progressive: bool) -> None:
    data = _jpeg(mode, progressive=progressive)
    assert all(p in data for p in PLANTED[:3])
    clean = strip_image_metadata(data)
    assert not _texts(clean)
    assert b"Exif" not in clean and b"ICC_PROFILE" not in clean and b"http://ns.adobe" not in clean
    assert np.array_equal(_decoded(clean), _decoded(data))
    with Image.open(io.BytesIO(clean)) as image:
        assert "exif" not in image.info and "icc_profile" not in image.info
        assert "comment" not in image.info


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_orientation_is_kept_alone(kind: str) -> None:
    data = _png(orientation=6) if kind == "png" else _jpeg(orientation=6)
    clean = strip_image_metadata(data)
    assert not _texts(clean)
    with Image.open(io.BytesIO(clean)) as image:
        exif = image.getexif()
        assert dict(exif) == {0x0112: 6}
    # the reader turns it the same way as before
    before = load_bytes(data, f"x.{kind}").pixels
    after = load_bytes(clean, f"x.{kind}").pixels
    assert before.shape == after.shape == (48, 64)
    assert np.array_equal(before, after)


def test_real_png_unchanged_in_pixels(nih_png: Path) -> None:
    data = nih_png.read_bytes()
    clean = strip_image_metadata(data)
    assert np.array_equal(_decoded(clean), _decoded(data))


def test_not_an_image_or_broken() -> None:
    with pytest.raises(UnreadableFileError, match="not a PNG or JPEG"):
        strip_image_metadata(b"GIF89a....")
    with pytest.raises(UnreadableFileError, match="corrupt"):
        strip_image_metadata(_png()[:200])
    with pytest.raises(UnreadableFileError, match="corrupt"):
        strip_image_metadata(_jpeg()[:300])
