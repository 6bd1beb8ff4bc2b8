"""Strip metadata from PNG and JPEG files without touching the image data.

Exported radiographs carry text outside the pixels: EXIF (camera, dates, sometimes a
GPS position or the operator), XMP, ICC profiles (with a description and copyright
text), PNG tEXt/iTXt/zTXt chunks (which some exporters fill with the DICOM header) and
JPEG comments. :func:`strip_image_metadata` copies only what decoding needs, byte for
byte, so the decoded pixels are identical:

* PNG: the critical chunks (IHDR, PLTE, IDAT, IEND) and the ancillary chunks that
  change how pixels are read or shown but hold no text (tRNS, gAMA, cHRM, sRGB, sBIT,
  pHYs, bKGD). Everything else (tEXt, iTXt, zTXt, eXIf, iCCP, tIME, unknown chunks) goes.
* JPEG: the frame, tables and scans (SOF, DHT, DQT, DAC, DRI, SOS and the entropy-coded
  data, EXP, DNL); APP0 JFIF without its thumbnail and APP14 Adobe (it says whether the
  colours are YCbCr), as they decide how pixels decode. All other APPn segments (EXIF,
  XMP, ICC, IPTC ...) and COM comments go, and so does anything after the end marker.

One thing is kept from EXIF: a non-default Orientation (the readers turn the image by
it, so dropping it would show a radiograph rotated or mirrored). It is written back as a
minimal EXIF block holding that one tag and nothing else.
"""

from __future__ import annotations

import struct
import zlib

from dxassist.errors import UnreadableFileError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_KEEP = frozenset(
    {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT"}
    | {b"pHYs", b"bKGD"}
)
_EXIF_HEADER = b"Exif\x00\x00"
_ORIENTATION_TAG = 0x0112


def _bad(kind: str, what: str) -> UnreadableFileError:
    return UnreadableFileError(f"{kind} file is corrupt ({what}); export the image again")


def _exif_orientation(tiff: bytes) -> int | None:
    """The Orientation of IFD0 of a TIFF-structured EXIF block, None if absent/unreadable."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return None
    order = "<" if tiff[:2] == b"II" else ">"
    (offset,) = struct.unpack_from(order + "I", tiff, 4)
    if offset + 2 > len(tiff):
        return None
    (count,) = struct.unpack_from(order + "H", tiff, offset)
    for i in range(count):
        pos = offset + 2 + 12 * i
        if pos + 12 > len(tiff):
            return None
        tag, kind, n = struct.unpack_from(order + "HHI", tiff, pos)
        if tag == _ORIENTATION_TAG and kind == 3 and n == 1:
            (value,) = struct.unpack_from(order + "H", tiff, pos + 8)
            return int(value) if 2 <= value <= 8 else None
    return None


def _minimal_exif(orientation: int) -> bytes:
    """A TIFF-structured EXIF block with only IFD0 Orientation."""
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", _ORIENTATION_TAG, 3, 1, orientation, 0)
    return b"MM\x00\x2a" + struct.pack(">I", 8) + ifd + struct.pack(">I", 0)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _strip_png(data: bytes) -> bytes:
    out = [PNG_SIGNATURE]
    pos = len(PNG_SIGNATURE)
    orientation: int | None = None
    while pos < len(data):
        if pos + 8 > len(data):
            raise _bad("PNG", "a chunk header is cut off")
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise _bad("PNG", f"the {kind.decode('latin-1')!r} chunk is cut off")
        if kind in _PNG_KEEP:
            out.append(data[pos:end])
        elif kind == b"eXIf":
            orientation = _exif_orientation(data[pos + 8 : pos + 8 + length])
        if kind == b"IEND":
            break
        pos = end
    else:
        raise _bad("PNG", "no IEND chunk")
    if orientation is not None:  # before the first IDAT (PNG requires eXIf there)
        first_idat = next(i for i, chunk in enumerate(out) if chunk[4:8] == b"IDAT")
        out.insert(first_idat, _png_chunk(b"eXIf", _minimal_exif(orientation)))
    return b"".join(out)


# JPEG markers kept besides SOI/EOI: SOF0-15 except DHT(C4), JPG(C8), DAC(CC); DHT, DAC,
# DQT, DRI, DNL, EXP. The markers RST0-7 occur only inside entropy-coded data.
_JPEG_KEEP = frozenset({*range(0xC0, 0xD0), 0xDB, 0xDD, 0xDC, 0xDF}) - {0xC8}


def _jfif_without_thumbnail(body: bytes) -> bytes | None:
    if not body.startswith(b"JFIF\x00") or len(body) < 14:
        return None
    return body[:12] + b"\x00\x00"  # version, units, densities; thumbnail 0x0


def _segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


def _strip_jpeg(data: bytes) -> bytes:
    out = [b"\xff\xd8"]
    pos = 2
    orientation: int | None = None
    header_at = 1  # where APP segments we keep go: right after SOI
    while True:
        if pos + 2 > len(data):
            raise _bad("JPEG", "it ends before the end-of-image marker")
        if data[pos] != 0xFF:
            raise _bad("JPEG", f"no marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # EOI: anything after it is dropped
            out.append(b"\xff\xd9")
            break
        if pos + 4 > len(data):
            raise _bad("JPEG", "a segment header is cut off")
        (length,) = struct.unpack_from(">H", data, pos + 2)
        end = pos + 2 + length
        if length < 2 or end > len(data):
            raise _bad("JPEG", f"segment 0xFF{marker:02X} is cut off")
        body = data[pos + 4 : end]
        if marker == 0xE0:
            jfif = _jfif_without_thumbnail(body)
            if jfif is not None:
                out.insert(header_at, _segment(0xE0, jfif))
                header_at += 1
        elif marker == 0xE1 and body.startswith(_EXIF_HEADER):
            orientation = _exif_orientation(body[len(_EXIF_HEADER) :]) or orientation
        elif (marker == 0xEE and body.startswith(b"Adobe")) or marker in _JPEG_KEEP:
            out.append(data[pos:end])
        elif marker == 0xDA:  # SOS: the header, then entropy-coded data up to a marker
            scan = end
            while True:
                scan = data.find(b"\xff", scan)
                if scan < 0 or scan + 1 >= len(data):
                    raise _bad("JPEG", "a scan has no end")
                following = data[scan + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    scan += 2  # stuffed 0xFF or a restart marker: still scan data
                    continue
                if following == 0xFF:
                    scan += 1
                    continue
                break
            out.append(data[pos:scan])
            end = scan
        # everything else (APP1-15 but Adobe, COM, unknown) is dropped
        pos = end
    if orientation is not None:
        out.insert(header_at, _segment(0xE1, _EXIF_HEADER + _minimal_exif(orientation)))
    return b"".join(out)


def strip_image_metadata(data: bytes) -> bytes:
    """The PNG or JPEG `data` with its metadata removed and its pixel data unchanged.

    Raises :class:`~dxassist.errors.UnreadableFileError` for other data, or a file whose
    structure is broken (nothing is returned half-stripped)."""
    if data.startswith(PNG_SIGNATURE):
        return _strip_png(data)
    if data.startswith(b"\xff\xd8\xff"):
        return _strip_jpeg(data)
    raise UnreadableFileError(
        "not a PNG or JPEG file, so its metadata cannot be stripped; send PNG, JPEG or DICOM"
    )
