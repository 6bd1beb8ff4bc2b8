"""Recognise a file by its content, never by its name.

Chest X-rays arrive as ``.dcm``, ``.DCM``, ``IM0001``, ``image.png.dcm``... and old CR
archives hold DICOM data sets with neither the 128-byte preamble nor file meta
information. This module answers two questions from the bytes alone: which of the
formats dxassist reads a file is (:func:`sniff_format`), and for encapsulated pixel
data without a transfer syntax, which compression a frame uses
(:func:`guess_encapsulated_syntax`).
"""

from __future__ import annotations

import struct
from typing import Literal

Format = Literal["dicom", "png", "jpeg"]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"

_VRS = frozenset(
    bytes(vr, "ascii")
    for vr in (
        *("AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT"),
        *("OB", "OD", "OF", "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST"),
        *("SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV"),
    )
)
# Groups a data set may start with: command/file meta/identifying information.
_FIRST_GROUPS = frozenset({0x0000, 0x0002, 0x0004, 0x0008})

# Other formats people send by mistake, for a helpful error message.
_OTHER_FORMATS: tuple[tuple[int, bytes, str], ...] = (
    (0, b"II*\x00", "a TIFF image"),
    (0, b"MM\x00*", "a TIFF image"),
    (0, b"BM", "a BMP image"),
    (0, b"GIF8", "a GIF image"),
    (0, b"%PDF", "a PDF document"),
    (0, b"PK\x03\x04", "a ZIP archive"),
    (0, b"\x1f\x8b", "a gzip-compressed file"),
    (0, b"\x00\x00\x00\x0cjP  \r\n\x87\n", "a JPEG 2000 image"),
    (0, b"\xff\x4f\xff\x51", "a JPEG 2000 codestream"),
    (8, b"WEBP", "a WebP image"),
    (4, b"ftypheic", "a HEIC photo"),
    (4, b"ftypmif1", "a HEIF photo"),
    (344, b"n+1\x00", "a NIfTI volume"),
)


def _looks_like_raw_dataset(data: bytes) -> bool:
    """True if `data` starts like a DICOM data set written without preamble."""
    if len(data) < 12:
        return False
    for order in "<>":
        group, element = struct.unpack(order + "HH", data[:4])
        if group not in _FIRST_GROUPS or element > 0x0100:
            continue
        if data[4:6] in _VRS:  # explicit VR
            return True
        (length,) = struct.unpack(order + "I", data[4:8])
        if length <= min(len(data) - 8, 1 << 16) and length % 2 == 0:  # implicit VR
            return True
    return False


def sniff_format(data: bytes) -> Format | None:
    """Return the format of `data` or ``None`` if it is none dxassist reads.

    Parameters
    ----------
    data:
        The whole file content (the first kilobyte is enough).

    Returns
    -------
    ``"dicom"``, ``"png"``, ``"jpeg"`` or ``None``.
    """
    if data[128:132] == b"DICM" or data[:4] == b"DICM":
        return "dicom"
    if data.startswith(PNG_MAGIC):
        return "png"
    if data.startswith(JPEG_MAGIC):
        return "jpeg"
    if _looks_like_raw_dataset(data):
        return "dicom"
    return None


def describe_content(data: bytes) -> str:
    """Say in a few words what `data` seems to be, for error messages.

    Parameters
    ----------
    data:
        The file content.

    Returns
    -------
    str
        E.g. ``"a TIFF image"``, ``"text"`` or ``"unrecognised binary data"``.
    """
    for offset, magic, what in _OTHER_FORMATS:
        if data[offset : offset + len(magic)] == magic:
            return what
    head = data[:4096]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character cut at the end of the sample is still text
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            text = ""
    if text and all(c.isprintable() or c in "\r\n\t\f" for c in text):
        start = text.lstrip().lower()
        if start.startswith(("<!doctype html", "<html")):
            return "an HTML page"
        if start.startswith(("{", "[")):
            return "JSON text"
        return "text"
    return "unrecognised binary data"


def _jpeg_syntax(frame: bytes) -> str | None:
    """Walk the JPEG markers up to the frame header and name the transfer syntax."""
    pos = 2
    sof: int | None = None
    while pos + 4 <= len(frame):
        if frame[pos] != 0xFF:
            return None
        marker = frame[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        (length,) = struct.unpack(">H", frame[pos + 2 : pos + 4])
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xF7):
            sof = marker
        elif marker == 0xDA:  # start of scan
            if sof == 0xC0:
                return "1.2.840.10008.1.2.4.50"
            if sof in (0xC1, 0xC2):
                return "1.2.840.10008.1.2.4.51"
            header = frame[pos + 4 : pos + 2 + length]
            ncomp = header[0] if header else 0
            params = header[1 + 2 * ncomp :]
            first = params[0] if params else 0
            if sof == 0xC3:  # lossless: Ss is the predictor, 1 = first-order
                return "1.2.840.10008.1.2.4.70" if first == 1 else "1.2.840.10008.1.2.4.57"
            if sof == 0xF7:  # JPEG-LS: Ss is NEAR
                return "1.2.840.10008.1.2.4.80" if first == 0 else "1.2.840.10008.1.2.4.81"
            return None
        pos += 2 + length
    return None


def guess_encapsulated_syntax(frame: bytes) -> str | None:
    """Guess the transfer syntax UID of one encapsulated frame from its codestream.

    Used for data sets without file meta information, where the transfer syntax is
    not written down anywhere.

    Parameters
    ----------
    frame:
        The first frame's bytes (JPEG, JPEG-LS, JPEG 2000, HTJ2K or RLE).

    Returns
    -------
    str or None
        A transfer syntax UID, or ``None`` if the codestream is not recognised.
    """
    if frame.startswith(b"\xff\xd8"):
        return _jpeg_syntax(frame)
    if frame.startswith(b"\xff\x4f\xff\x51") or frame.startswith(b"\x00\x00\x00\x0cjP  "):
        # a CAP marker in the main header means Part 15 (High-Throughput) JPEG 2000
        header_end = frame.find(b"\xff\x90")
        if b"\xff\x50" in frame[: header_end if header_end > 0 else 256]:
            return "1.2.840.10008.1.2.4.203"
        return "1.2.840.10008.1.2.4.91"
    if len(frame) >= 64:
        segments, first_offset = struct.unpack("<2I", frame[:8])
        if 1 <= segments <= 15 and first_offset == 64:
            return "1.2.840.10008.1.2.5"
    return None


#: JPEG start-of-frame markers (all processes, incl. JPEG-LS SOF55) that carry the size.
_SOF_MARKERS = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}
)


def codestream_size(frame: bytes) -> tuple[int, int] | None:
    """Return (columns, rows) declared by a JPEG, JPEG-LS or JPEG 2000 codestream header.

    Read before decoding so that a header claiming a huge image (a decompression bomb)
    is refused before any memory is allocated for it.

    Parameters
    ----------
    frame:
        The first frame's bytes.

    Returns
    -------
    tuple of int or None
        ``(columns, rows)``, or ``None`` if the codestream is not recognised.
    """
    if frame.startswith(b"\xff\xd8"):
        pos = 2
        while pos + 9 <= len(frame):
            if frame[pos] != 0xFF:
                return None
            marker = frame[pos + 1]
            if marker == 0xFF:
                pos += 1
                continue
            if marker in _SOF_MARKERS:
                rows, cols = struct.unpack(">HH", frame[pos + 5 : pos + 9])
                return cols, rows
            if marker == 0xDA:
                return None
            (length,) = struct.unpack(">H", frame[pos + 2 : pos + 4])
            pos += 2 + length
        return None
    siz = frame.find(b"\xff\x4f\xff\x51")
    if siz >= 0 and siz + 24 <= len(frame):
        xsiz, ysiz, x0, y0 = struct.unpack(">IIII", frame[siz + 8 : siz + 24])
        return max(0, xsiz - x0), max(0, ysiz - y0)
    return None
