"""Format detection from content alone."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from dxassist.imaging.sniff import describe_content, guess_encapsulated_syntax, sniff_format

from .conftest import PickImage


def test_real_files_are_recognised(pick_image: PickImage, nih_dx_path: Path, rg1_path: str) -> None:
    assert sniff_format(pick_image("nih").read_bytes()) == "png"
    assert sniff_format(pick_image("kermany").read_bytes()) == "jpeg"
    assert sniff_format(nih_dx_path.read_bytes()) == "dicom"
    data = Path(rg1_path).read_bytes()
    assert sniff_format(data) == "dicom"
    assert sniff_format(data[128:]) == "dicom"  # "DICM" without preamble
    assert sniff_format(data[132:]) == "dicom"  # file meta group without preamble


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("study/IM0001", b"x")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"Patient doing well.\n", "text"),
        ("病人情况良好。\n".encode(), "text"),
        (b"<!DOCTYPE html><html><body>PACS login</body></html>", "an HTML page"),
        (b'{"resourceType": "ImagingStudy"}', "JSON text"),
        (b"%PDF-1.7\n...", "a PDF document"),
        (_zip(), "a ZIP archive"),
        (bytes(range(256)) * 4, "unrecognised binary data"),
    ],
)
def test_other_content_is_described(data: bytes, what: str) -> None:
    assert sniff_format(data) is None
    assert describe_content(data) == what


def test_jpeg_codestreams_are_identified(pick_image: PickImage) -> None:
    grey = Image.open(pick_image("nih")).convert("L")
    buf = io.BytesIO()
    grey.save(buf, "JPEG", quality=90)
    assert guess_encapsulated_syntax(buf.getvalue()) == "1.2.840.10008.1.2.4.50"
    assert guess_encapsulated_syntax(b"\x00" * 100) is None
    assert guess_encapsulated_syntax(b"") is None
