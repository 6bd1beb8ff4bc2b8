"""Turn a DICOM chest radiograph into display-ready pixels plus metadata.

The grayscale pipeline is the one of PS3.3 C.11 / PS3.4 N.2, with pydicom's
implementations of each step: stored values (unused high bits masked, signed values
sign-extended) -> Modality LUT (rescale or LUT sequence) -> VOI LUT (LUT sequence,
else first window, else a robust percentile window) -> Presentation LUT (shape
``INVERSE`` and ``MONOCHROME1`` both mean "invert once") -> float32 in [0, 1] with bone
bright.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset, FileDataset
from pydicom.encaps import get_frame
from pydicom.multival import MultiValue
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import (
    apply_color_lut,
    apply_modality_lut,
    apply_presentation_lut,
    apply_voi,
    apply_windowing,
)
from pydicom.tag import Tag
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pydicom.valuerep import PersonName

from dxassist.errors import MissingDecoderError, NotARadiographError, UnreadableFileError
from dxassist.imaging.charset import CharacterSet, decode_text, parse_character_set
from dxassist.imaging.grey import rgb_to_grey
from dxassist.imaging.radiograph import MAX_PIXELS, Radiograph, RadiographMeta
from dxassist.imaging.sniff import codestream_size, guess_encapsulated_syntax

FloatArray = npt.NDArray[np.float64]
T = TypeVar("T")

#: Modalities that are (or may hold) a projection radiograph of the chest.
RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "DR", "RG", "XR", "OT", "SC"})

_MODALITY_NAMES: dict[str, str] = {
    "CT": "computed tomography",
    "MR": "magnetic resonance",
    "US": "ultrasound",
    "NM": "nuclear medicine",
    "PT": "PET",
    "XA": "X-ray angiography",
    "RF": "fluoroscopy",
    "MG": "mammography",
    "IO": "intra-oral X-ray",
    "PX": "panoramic dental X-ray",
    "BMD": "bone densitometry",
    "ES": "endoscopy",
    "XC": "photograph",
    "OP": "ophthalmic photograph",
    "SM": "slide microscopy",
    "RTIMAGE": "radiotherapy image",
    "SEG": "segmentation",
    "SR": "structured report",
    "DOC": "document",
    "KO": "key object selection",
    "PR": "presentation state",
}

_STORAGE = "1.2.840.10008.5.1.4.1.1."
#: Media Storage Directory Storage: the DICOMDIR index file of a CD, DVD or USB export.
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
#: SOP classes that are images but never a projection radiograph -> their modality.
NON_RADIOGRAPH_SOP_CLASSES: dict[str, str] = {
    _STORAGE + "2": "CT",
    _STORAGE + "2.1": "CT",
    _STORAGE + "2.2": "CT",
    _STORAGE + "4": "MR",
    _STORAGE + "4.1": "MR",
    _STORAGE + "4.3": "MR",
    _STORAGE + "4.4": "MR",
    _STORAGE + "3.1": "US",
    _STORAGE + "6.1": "US",
    _STORAGE + "6.2": "US",
    _STORAGE + "20": "NM",
    _STORAGE + "128": "PT",
    _STORAGE + "128.1": "PT",
    _STORAGE + "130": "PT",
    _STORAGE + "12.1": "XA",
    _STORAGE + "12.1.1": "XA",
    _STORAGE + "12.2": "RF",
    _STORAGE + "12.2.1": "RF",
    _STORAGE + "1.2": "MG",
    _STORAGE + "1.2.1": "MG",
    _STORAGE + "13.1.3": "MG",
    _STORAGE + "13.1.4": "MG",
    _STORAGE + "13.1.5": "MG",
    _STORAGE + "1.3": "IO",
    _STORAGE + "1.3.1": "IO",
    _STORAGE + "481.1": "RTIMAGE",
    _STORAGE + "66.4": "SEG",
    _STORAGE + "77.1.6": "SM",
}

#: What to install for each compressed transfer syntax pydicom can decode.
_DECODER_PACKAGES: dict[str, str] = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg and pylibjpeg-libjpeg (or Pillow)",
    "1.2.840.10008.1.2.4.51": "pylibjpeg and pylibjpeg-libjpeg (or Pillow)",
    "1.2.840.10008.1.2.4.57": "pylibjpeg and pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.70": "pylibjpeg and pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.80": "pyjpegls (or pylibjpeg and pylibjpeg-libjpeg)",
    "1.2.840.10008.1.2.4.81": "pyjpegls (or pylibjpeg and pylibjpeg-libjpeg)",
    "1.2.840.10008.1.2.4.90": "pylibjpeg and pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.91": "pylibjpeg and pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.201": "pylibjpeg and pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.202": "pylibjpeg and pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg and pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.5": "pylibjpeg-rle (or numpy for pydicom's own decoder)",
}
#: Transfer syntaxes no Python package decodes (for pydicom 3.0), by name.
_UNSUPPORTED_SYNTAXES: dict[str, str] = {
    "1.2.840.10008.1.2.4.92": "JPEG 2000 Part 2 Multi-component (Lossless Only)",
    "1.2.840.10008.1.2.4.93": "JPEG 2000 Part 2 Multi-component",
    "1.2.840.10008.1.2.4.94": "JPIP Referenced",
    "1.2.840.10008.1.2.4.95": "JPIP Referenced Deflate",
    "1.2.840.10008.1.2.4.110": "JPEG XL Lossless",
    "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
    "1.2.840.10008.1.2.4.112": "JPEG XL",
    "1.2.840.10008.1.2.6.1": "RFC 2557 MIME encapsulation",
}

_AGE_RE = re.compile(r"^(\d{1,3})\s*([DWMY])$")
_AGE_UNIT_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}


def parse_age(value: str | None) -> tuple[float | None, str | None]:
    """Parse a DICOM Age String (AS), leniently.

    Parameters
    ----------
    value:
        The *Patient's Age* value, e.g. ``"045Y"``, ``"006M"``, ``"010W"``, ``"003D"``.
        A bare number (``"81"``) is read as years, with a warning.

    Returns
    -------
    tuple of (float or None, str or None)
        Age in years (``None`` if absent or unreadable) and a warning (``None`` if the
        value was a valid AS string or absent).
    """
    text = (value or "").strip().upper()
    if not text:
        return None, None
    match = _AGE_RE.match(text)
    if match:
        years = int(match.group(1)) * _AGE_UNIT_YEARS[match.group(2)]
        if len(text) == 4:
            return years, None
        return years, (
            f"PatientAge {value!r} is not a valid DICOM age (e.g. '045Y'); read as {years:g} years"
        )
    bare = re.fullmatch(r"(\d{1,3}(?:\.\d+)?)\s*(?:YEARS?|YRS?|Y/O)?", text)
    if bare:
        years = float(bare.group(1))
        if years <= 150:
            return years, (
                f"PatientAge {value!r} is not a valid DICOM age (e.g. '045Y'); "
                f"read as {years:g} years"
            )
    return None, f"PatientAge {value!r} is not a valid DICOM age (e.g. '045Y'); ignored"


@contextmanager
def _collect_warnings(notes: list[str], prefix: str = "") -> Iterator[None]:
    """Turn Python warnings (pydicom's, Pillow's) raised inside the block into notes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for item in caught:
        if issubclass(item.category, DeprecationWarning):
            continue
        message = prefix + str(item.message)
        if message not in notes:
            notes.append(message)


def _view_hints(ds: Dataset, header: _Header) -> tuple[str, ...]:
    """Texts that may name the view: View Code Sequence meaning, series, protocol."""
    hints: list[str] = []
    try:
        seq = ds.get("ViewCodeSequence")
        if seq:
            meaning = seq[0].get("CodeMeaning")
            if meaning:
                hints.append(str(meaning))
    except Exception:  # a malformed sequence only loses the hint
        pass
    for keyword in ("SeriesDescription", "ProtocolName"):
        text = header.text(keyword)
        if text:
            hints.append(text)
    return tuple(hints)


class _Header:
    """Read header values without letting a malformed one stop the loading."""

    def __init__(self, ds: Dataset, charset: CharacterSet, notes: list[str]) -> None:
        self.ds = ds
        self.charset = charset
        self.notes = notes

    def text(self, keyword: str, *, person_name: bool = False) -> str | None:
        """Decode a text value from its raw bytes with the data set's character set."""
        if keyword not in self.ds:
            return None
        try:
            elem = self.ds.get_item(Tag(keyword))
            value = None if elem is None else elem.value
        except Exception:  # an unreadable value is a warning, not a failure
            self.notes.append(f"{keyword}: value could not be read; ignored")
            return None
        if value is None:
            return None
        if isinstance(value, PersonName):
            raw = value.original_string
            if raw is None:
                return str(value).strip() or None
        elif isinstance(value, bytes):
            raw = value
        elif isinstance(value, MultiValue | list | tuple):
            return "\\".join(str(v) for v in value).strip() or None
        else:
            return str(value).strip() or None
        text, notes = decode_text(raw, self.charset, what=keyword, person_name=person_name)
        self.notes.extend(notes)
        return text.strip(" \x00") or None

    def code(self, keyword: str) -> str | None:
        """A CS value, upper-cased, first value if several."""
        text = self.text(keyword)
        if text is None:
            return None
        return text.split("\\")[0].strip().upper() or None

    def value(self, keyword: str, convert: Callable[[Any], T]) -> T | None:
        """A converted (numeric, UID...) value, ``None`` with a warning if malformed."""
        caught: list[str] = []
        try:
            with _collect_warnings(caught):
                raw = self.ds.get(keyword)
                result = None if raw is None or raw == "" else convert(raw)
        except Exception:
            self.notes.append(f"{keyword}: malformed value; ignored")
            return None
        self.notes.extend(f"{keyword}: {message}" for message in caught)
        return result


def _spacing(value: Any) -> tuple[float, float] | None:
    values = [float(v) for v in value]
    if len(values) != 2 or not all(math.isfinite(v) and v > 0 for v in values):
        return None
    return values[0], values[1]


def _read(data: bytes, name: str, notes: list[str]) -> FileDataset:
    if data[:4] == b"DICM":  # "DICM" without the 128-byte preamble
        data = bytes(128) + data
    caught: list[str] = []
    try:
        with _collect_warnings(caught):
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as exc:
        raise UnreadableFileError(
            f"{name}: not a readable DICOM file ({type(exc).__name__}: {exc}); "
            "the file is corrupt or truncated - export it from the PACS again"
        ) from exc
    for message in caught:
        if "End of file reached" in message or "Expected total bytes" in message:
            raise UnreadableFileError(
                f"{name}: DICOM file is truncated (it ends in the middle of a data "
                "element); the copy or transfer was interrupted - copy the file again"
            )
    notes.extend(f"DICOM: {m}" for m in caught)
    return ds


def _transfer_syntax(ds: FileDataset, name: str, notes: list[str]) -> UID:
    """Return the transfer syntax, guessing (and writing it into file_meta) if absent."""
    declared = ds.file_meta.get("TransferSyntaxUID")
    if declared and UID(str(declared).strip(" \x00")).is_valid:
        return UID(str(declared).strip(" \x00"))
    implicit, little = ds.original_encoding
    guess: UID | None = None
    elem = ds.get_item("PixelData") if "PixelData" in ds else None
    value = elem.value if elem is not None else None
    encapsulated = isinstance(value, bytes) and value[:4] == b"\xfe\xff\x00\xe0"
    if encapsulated and isinstance(value, bytes):
        try:
            frame = get_frame(value, 0, number_of_frames=_frames(ds))
        except Exception:
            frame = b""
        found = guess_encapsulated_syntax(frame)
        if found is None:
            raise UnreadableFileError(
                f"{name}: DICOM file has no transfer syntax and its compressed pixel data "
                "is in no format dxassist recognises; re-export it with file meta "
                "information"
            )
        guess = UID(found)
    elif implicit or implicit is None:
        guess = ImplicitVRLittleEndian
    elif little or little is None:
        guess = ExplicitVRLittleEndian
    else:
        guess = UID("1.2.840.10008.1.2.2")
    what = "no transfer syntax" if not declared else f"an invalid transfer syntax {declared!r}"
    notes.append(f"DICOM file has {what}; read as {guess.name}, guessed from the data")
    ds.file_meta.TransferSyntaxUID = guess
    return guess


def _frames(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1


def _check_image(ds: Dataset, header: _Header, name: str) -> tuple[str | None, str | None]:
    """Raise unless `ds` is a projection radiograph with pixel data; return modality, SOP."""
    sop_class = header.text("SOPClassUID") or (
        str(ds.file_meta.get("MediaStorageSOPClassUID") or "") or None
    )
    modality = header.code("Modality")
    sop_name = UID(sop_class).name if sop_class else "unknown SOP class"
    media_class = str(ds.file_meta.get("MediaStorageSOPClassUID") or "").strip(" \x00")
    if media_class == MEDIA_STORAGE_DIRECTORY or "DirectoryRecordSequence" in ds:
        raise NotARadiographError(
            f"{name}: this is a DICOMDIR, the index of a DICOM CD, DVD or USB export, not "
            "an image; give the image files it lists (in the folders beside it)"
        )
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise NotARadiographError(
                f"{name}: DICOM file has floating-point pixel data ({sop_name}), which is "
                "a derived map, not a radiograph; dxassist reads chest X-rays (CR/DX)"
            )
        if not any(k in ds for k in ("SOPClassUID", "Modality", "StudyInstanceUID", "Rows")):
            raise UnreadableFileError(
                f"{name}: not a valid DICOM file (no image and no identifying attributes "
                "could be read); it is corrupt - export it from the PACS again"
            )
        if "Rows" in ds and "Columns" in ds:
            raise UnreadableFileError(
                f"{name}: DICOM file has image attributes but no pixel data: it is "
                "truncated or its pixel data was stripped - export the image again"
            )
        kind = f"modality {modality}, " if modality else ""
        raise NotARadiographError(
            f"{name}: DICOM file has no pixel data ({kind}{sop_name}); it is not an "
            "image - send the radiograph itself (CR/DX image)"
        )
    if not ds.get_item("PixelData").value:
        raise UnreadableFileError(
            f"{name}: DICOM file has an empty Pixel Data element (0 bytes): its pixel data "
            "was stripped or the transfer failed - export the image again"
        )
    by_sop = NON_RADIOGRAPH_SOP_CLASSES.get(sop_class or "")
    if by_sop is not None or (modality and modality not in RADIOGRAPH_MODALITIES):
        shown = by_sop or modality or "?"
        detail = _MODALITY_NAMES.get(shown)
        what = "a chest" if shown in {"MG", "IO", "PX", "BMD"} else "a projection"
        it_is = f" (it is {detail})" if detail else ""
        source = f"; SOP class {UID(sop_class or '').name}" if by_sop else ""
        raise NotARadiographError(
            f"{name}: modality {shown} is not {what} radiograph{it_is}{source}; "
            "dxassist reads chest X-rays (CR/DX)"
        )
    return modality, sop_class


def _missing_decoder(ts: UID, name: str, detail: str = "") -> MissingDecoderError:
    ts_name = _UNSUPPORTED_SYNTAXES.get(str(ts)) or (ts.name if ts.name != str(ts) else "")
    label = f"{ts_name} ({ts})" if ts_name else str(ts)
    package = _DECODER_PACKAGES.get(str(ts))
    if package:
        advice = f"install {package} (pip install {package.split(' (')[0].replace(' and', '')})"
    else:
        advice = (
            f"pydicom {pydicom.__version__} has no decoder for it (a newer pydicom may); "
            "ask for the image uncompressed or in JPEG 2000/JPEG-LS, or convert it "
            "(e.g. with dcmtk or gdcmconv --raw)"
        )
    extra = f" [{detail}]" if detail else ""
    return MissingDecoderError(
        f"{name}: pixel data is compressed with {label}, which cannot be decoded here; "
        f"{advice}{extra}"
    )


def _check_native_length(ds: Dataset, name: str) -> None:
    """Refuse uncompressed pixel data that holds whole rows more than the header describes.

    pydicom drops such excess as padding, which turns a wrong Rows/Columns/Bits Allocated/
    Samples per Pixel/Number of Frames into a sheared or cropped image read without error.
    Less than one row of excess is padding and left to pydicom (which warns); too little
    data is reported by the decoder as truncation.
    """
    rows, cols = int(ds.Rows), int(ds.Columns)
    bits, samples, frames = int(ds.BitsAllocated), int(ds.SamplesPerPixel), _frames(ds)
    if str(ds.PhotometricInterpretation).startswith("YBR_FULL_422"):
        samples = 2  # two chroma samples shared by every pair of pixels
    expected = -(-rows * cols * samples * bits * frames // 8)
    actual = len(ds.PixelData)
    row_bytes = max(1, cols * samples * bits // 8)
    if actual - expected > 1 and actual - expected >= row_bytes:  # 1 byte pads odd lengths
        raise UnreadableFileError(
            f"{name}: the DICOM header does not match the pixel data: {rows} rows x {cols} "
            f"columns x {samples} samples x {bits} bits x {frames} frame(s) make "
            f"{expected} bytes but the pixel data holds {actual}; Rows, Columns, Bits "
            "Allocated, Samples per Pixel or Number of Frames is wrong - export the image "
            "again"
        )


def _check_codestream_size(ds: Dataset, name: str) -> None:
    """Refuse a compressed frame whose own header gives another size than Rows/Columns.

    Decoders allocate what the codestream declares: a small file claiming a huge image
    would exhaust memory before failing (a decompression bomb).
    """
    try:
        frame = get_frame(ds.PixelData, 0, number_of_frames=_frames(ds))
    except Exception:  # unreadable fragments: the decoder reports them
        return
    size = codestream_size(frame)
    rows, cols = int(ds.Rows), int(ds.Columns)
    if size is not None and 0 not in size and size != (cols, rows):
        raise UnreadableFileError(
            f"{name}: the compressed image is {size[0]}x{size[1]} pixels but the DICOM "
            f"header says {cols}x{rows}; the file is corrupt - export the image again"
        )


def _decode_first_frame(
    ds: Dataset, ts: UID, name: str, notes: list[str]
) -> tuple[npt.NDArray[Any], dict[str, Any]]:
    try:
        decoder = get_decoder(ts)
    except NotImplementedError as exc:
        raise _missing_decoder(ts, name) from exc
    if not decoder.is_available:
        raise _missing_decoder(ts, name, "; ".join(decoder.missing_dependencies))
    if ts.is_encapsulated:
        _check_codestream_size(ds, name)
    else:
        _check_native_length(ds, name)
    frames = _frames(ds)
    if frames > 1:
        notes.append(f"DICOM file has {frames} frames; only the first one is read")
    decode_notes: list[str] = []
    # unused bits are masked by _stored_values, which also honours High Bit
    options: dict[str, Any] = {"correct_unused_bits": False}
    try:
        with _collect_warnings(decode_notes, "decoder: "):
            arr, props = decoder.as_array(ds, index=0, **options)
    except ImportError as exc:
        raise _missing_decoder(ts, name, str(exc)) from exc
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # Rust decoders panic with pyo3's BaseException subclass
        message = str(exc)
        if "less than expected" in message or "shorter than" in message:
            raise UnreadableFileError(
                f"{name}: DICOM file is truncated: its pixel data is shorter than "
                f"{ds.get('Rows')}x{ds.get('Columns')} pixels need; the copy or transfer "
                "was interrupted - copy the file again"
            ) from exc
        if ts.is_encapsulated:
            raise UnreadableFileError(
                f"{name}: the {ts.name} pixel data could not be decoded, the compressed "
                f"stream is corrupt or truncated ({type(exc).__name__}: "
                f"{message.splitlines()[0] if message else ''}) - export the image again"
            ) from exc
        raise UnreadableFileError(
            f"{name}: the pixel data could not be read ({type(exc).__name__}: {message}); "
            "the image header is invalid or the file is corrupt - export the image again"
        ) from exc
    notes.extend(decode_notes)
    return arr, dict(props)


def _stored_values(
    arr: npt.NDArray[Any], bits_stored: int, high_bit: int, signed: bool, native: bool
) -> npt.NDArray[np.int64]:
    """Keep only the Bits Stored bits (ending at High Bit) and sign-extend if signed.

    Unused high bits may hold junk (overlays, garbage from old modalities); PS3.5
    8.1.1 says they must be ignored.
    """
    container = arr.dtype.itemsize * 8
    values = arr.astype(np.int64) & ((1 << container) - 1)
    low = high_bit - bits_stored + 1 if native else 0
    if low > 0:
        values >>= low
    if bits_stored < 64:
        values &= (1 << bits_stored) - 1
    if signed:
        half = 1 << (bits_stored - 1)
        values = np.where(values >= half, values - (1 << bits_stored), values)
    return values


def _rescale(arr: FloatArray, lo: float, hi: float) -> FloatArray:
    if hi <= lo:
        return np.zeros_like(arr)
    return np.clip((arr - lo) / (hi - lo), 0.0, 1.0)


def _voi_lut(values: FloatArray, ds: Dataset, notes: list[str]) -> FloatArray:
    item = ds.VOILUTSequence[0]
    entries, first, depth = (int(v) for v in item.LUTDescriptor)
    entries = entries or 65536
    indices = np.clip(np.rint(values), first, first + entries - 1).astype(np.int64)
    out = np.asarray(apply_voi(indices, ds, index=0), dtype=np.float64)
    lut_max = int(np.asarray(apply_voi(np.arange(first, first + entries), ds)).max())
    top = (1 << depth) - 1
    used_bits = max(lut_max, 1).bit_length()
    if lut_max > top or (8 <= used_bits < depth - 1):
        notes.append(
            f"VOI LUT declares {depth} bits per entry but its values need {used_bits}; "
            f"scaled to {used_bits} bits"
        )
        top = (1 << used_bits) - 1
    return out / top


def _window(values: FloatArray, ds: Dataset) -> FloatArray:
    out = np.asarray(apply_windowing(values.copy(), ds, index=0), dtype=np.float64)
    # The output range depends on Bits Stored, the Modality LUT and rescale: ask pydicom
    # what the two extremes map to rather than recomputing its rules.
    # With a negative Rescale Slope pydicom's range is reversed (below -> the larger
    # value), so normalise by the signed span: "below the window" is always 0.
    with np.errstate(over="ignore"):
        probe = np.asarray(apply_windowing(np.array([-1e30, 1e30]), ds, index=0), np.float64)
    below, above = float(probe[0]), float(probe[1])
    if above == below:
        return np.zeros_like(out)
    return np.clip((out - below) / (above - below), 0.0, 1.0)


def _percentile_window(
    values: FloatArray, stored: npt.NDArray[np.int64], ds: Dataset
) -> FloatArray:
    sample = values
    padding = ds.get("PixelPaddingValue")
    if isinstance(padding, int):
        limit = ds.get("PixelPaddingRangeLimit")
        lo_pad, hi_pad = sorted((padding, limit if isinstance(limit, int) else padding))
        keep = (stored < lo_pad) | (stored > hi_pad)
        if keep.any():
            sample = values[keep]
    lo, hi = np.percentile(sample, [0.5, 99.5])
    if hi <= lo:
        lo, hi = float(sample.min()), float(sample.max())
    return _rescale(values, float(lo), float(hi))


def _unusable(out: FloatArray, values: FloatArray) -> str | None:
    """Why a window or VOI LUT output cannot be shown, or None if it can."""
    if not np.isfinite(out).all():
        return "give NaN or infinite grey levels"
    if out.max() == out.min() and values.max() > values.min():
        return "map every pixel to the same grey level"
    return None


def _grey(
    arr: npt.NDArray[Any], ds: Dataset, ts: UID, header: _Header, name: str, notes: list[str]
) -> tuple[FloatArray, str]:
    """The monochrome pipeline; returns pixels in [0, 1] (not yet inverted) and windowing."""
    bits_allocated = int(ds.BitsAllocated)
    bits_stored = int(ds.BitsStored)
    high_bit = header.value("HighBit", int)
    if high_bit is None or not bits_stored - 1 <= high_bit < bits_allocated:
        if high_bit is not None:
            notes.append(f"HighBit {high_bit} is inconsistent with BitsStored; ignored")
        high_bit = bits_stored - 1
    signed = int(ds.PixelRepresentation) == 1
    stored = _stored_values(arr, bits_stored, high_bit, signed, not ts.is_encapsulated)

    try:
        slope_is_zero = float(ds.get("RescaleSlope", 1)) == 0
    except (TypeError, ValueError):  # malformed: pydicom's Modality LUT decides below
        slope_is_zero = False
    if slope_is_zero and not ds.get("ModalityLUTSequence"):
        raise UnreadableFileError(
            f"{name}: Rescale Slope is 0, which maps every pixel to the same value; the "
            "header is corrupt - export the image again"
        )
    try:
        with np.errstate(all="ignore"):
            values = np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
    except Exception as exc:
        notes.append(f"Modality LUT could not be applied ({exc}); used the stored values")
        values = stored.astype(np.float64)
    if not np.isfinite(values).all():
        raise UnreadableFileError(
            f"{name}: Rescale Slope/Intercept ({ds.get('RescaleSlope')}, "
            f"{ds.get('RescaleIntercept')}) turn the stored pixel values into NaN or "
            "infinity; the header is corrupt - export the image again"
        )

    if ds.get("VOILUTSequence"):
        try:
            with np.errstate(all="ignore"):
                out = _voi_lut(values, ds, notes)
            problem = _unusable(out, values)
            if problem is None:
                return out, "voi_lut"
            notes.append(f"VOI LUT Sequence would {problem}; ignored")
        except Exception as exc:
            notes.append(f"VOI LUT Sequence could not be applied ({exc}); ignored")
    if "WindowCenter" in ds and "WindowWidth" in ds:
        try:
            with np.errstate(all="ignore"):
                out = _window(values, ds)
            problem = _unusable(out, values)
            if problem is None:
                return out, "window"
            notes.append(
                f"Window Center/Width ({ds.get('WindowCenter')}, {ds.get('WindowWidth')}) "
                f"would {problem}; ignored, a percentile window was used"
            )
        except Exception as exc:
            notes.append(f"window centre/width could not be applied ({exc}); ignored")
    return _percentile_window(values, stored, ds), "percentile"


def _colour(arr: npt.NDArray[Any], ds: Dataset, photometric: str, notes: list[str]) -> FloatArray:
    """Colour pixels to grey in [0, 1]: luma for RGB, the Y channel for YCbCr."""
    if photometric == "PALETTE COLOR":
        rgb = np.asarray(apply_color_lut(arr, ds), dtype=np.float64)
        scale = float((1 << int(ds.RedPaletteColorLookupTableDescriptor[2])) - 1)
    else:
        rgb = arr.astype(np.float64)
        scale = float((1 << int(ds.BitsStored)) - 1)
    if rgb.ndim != 3 or rgb.shape[-1] < 3:
        raise ValueError(f"unexpected colour pixel array shape {rgb.shape}")
    if photometric.startswith(("YBR_FULL", "YBR_PARTIAL")):  # not converted by the decoder
        return np.clip(rgb[..., 0] / scale, 0.0, 1.0)
    return rgb_to_grey(rgb, scale, notes)


def _fill_pixel_module(ds: Dataset, header: _Header, name: str, notes: list[str]) -> None:
    """Check the Image Pixel module and fill in what old files leave out."""
    for keyword in ("Rows", "Columns", "BitsAllocated"):
        if header.value(keyword, int) is None:
            raise UnreadableFileError(
                f"{name}: DICOM image lacks {keyword}, so its pixel data cannot be "
                "interpreted; export the image again"
            )
    rows, cols = int(ds.Rows), int(ds.Columns)
    if rows <= 0 or cols <= 0 or rows * cols > MAX_PIXELS:
        raise UnreadableFileError(
            f"{name}: DICOM header gives an image of {cols}x{rows} pixels, which no "
            f"radiograph has (at most {MAX_PIXELS // 1_000_000} megapixels); the header is "
            "corrupt - export the image again"
        )
    if header.value("BitsStored", int) is None:
        ds.BitsStored = int(ds.BitsAllocated)
        notes.append(f"BitsStored missing; assumed {ds.BitsStored}")
    if header.value("PixelRepresentation", int) is None:
        ds.PixelRepresentation = 0
        notes.append("PixelRepresentation missing; assumed unsigned")
    if header.value("SamplesPerPixel", int) is None:
        ds.SamplesPerPixel = 1
    if not header.code("PhotometricInterpretation"):
        ds.PhotometricInterpretation = "MONOCHROME2" if ds.SamplesPerPixel == 1 else "RGB"
        notes.append(f"PhotometricInterpretation missing; assumed {ds.PhotometricInterpretation}")
    else:
        ds.PhotometricInterpretation = header.code("PhotometricInterpretation")
    photometric, samples = str(ds.PhotometricInterpretation), int(ds.SamplesPerPixel)
    if photometric.startswith("MONOCHROME") and samples != 1:
        ts = UID(str(ds.file_meta.get("TransferSyntaxUID") or ""))
        one_sample = -(-rows * cols * int(ds.BitsAllocated) * _frames(ds) // 8)
        native = ts.is_transfer_syntax and not ts.is_encapsulated
        if native and len(ds.PixelData) in (one_sample, one_sample + 1):
            ds.SamplesPerPixel = 1
            notes.append(
                f"SamplesPerPixel {samples} contradicts {photometric} and the pixel data "
                "holds one sample per pixel; read as a grey image"
            )
        else:
            notes.append(
                f"SamplesPerPixel {samples} contradicts {photometric}; the pixel data was "
                f"read with {samples} samples per pixel - check the image"
            )
    if int(ds.SamplesPerPixel) == 3 and header.value("PlanarConfiguration", int) is None:
        ds.PlanarConfiguration = 0
        notes.append("PlanarConfiguration missing; assumed colour-by-pixel (0)")


def load_dicom(data: bytes, name: str) -> Radiograph:
    """Decode a DICOM file held in memory.

    Parameters
    ----------
    data:
        The file content (with or without preamble and file meta information).
    name:
        File name used in messages.

    Returns
    -------
    Radiograph
        Pixels in [0, 1] with bone bright, and metadata.

    Raises
    ------
    UnreadableFileError
        Corrupt, truncated or undecodable file.
    NotARadiographError
        No pixel data, or an image of another modality (CT, MR, US...).
    MissingDecoderError
        Compressed with a transfer syntax no installed package decodes.
    """
    notes: list[str] = []
    ds = _read(data, name, notes)
    with _collect_warnings(notes, "DICOM: "):
        return _load(ds, name, notes)


def _load(ds: FileDataset, name: str, notes: list[str]) -> Radiograph:
    raw_charset = (
        ds.get_item("SpecificCharacterSet").value if "SpecificCharacterSet" in ds else None
    )
    if isinstance(raw_charset, MultiValue | list):
        raw_charset = "\\".join(str(v) for v in raw_charset)
    charset = parse_character_set(raw_charset)
    notes.extend(f"SpecificCharacterSet: {p}" for p in charset.problems)
    header = _Header(ds, charset, notes)

    modality, sop_class = _check_image(ds, header, name)
    if not modality:
        notes.append("DICOM file has no Modality; read as a radiograph")
    ts = _transfer_syntax(ds, name, notes)
    _fill_pixel_module(ds, header, name, notes)
    photometric_stored = str(ds.PhotometricInterpretation)
    arr, props = _decode_first_frame(ds, ts, name, notes)
    photometric = str(props.get("photometric_interpretation", photometric_stored))

    windowing: str | None = None
    if int(props.get("samples_per_pixel", 1)) == 1 and photometric.startswith("MONOCHROME"):
        pixels, windowing = _grey(arr, ds, ts, header, name, notes)
        shape = header.code("PresentationLUTShape")
        invert = photometric == "MONOCHROME1"
        if ds.get("PresentationLUTSequence"):
            try:
                item = ds.PresentationLUTSequence[0]
                top = float((1 << int(item.LUTDescriptor[2])) - 1)
                # pydicom scales its input by the input's min/max: pin those to 0 and 1
                pinned = np.concatenate([pixels.ravel(), [0.0, 1.0]])
                mapped = np.asarray(apply_presentation_lut(pinned, ds), np.float64)
                if top <= 0 or not np.isfinite(mapped).all():
                    raise ValueError(f"{item.LUTDescriptor[2]} bits per entry")
                pixels = (mapped[:-2] / top).reshape(pixels.shape)
            except Exception as exc:
                notes.append(f"Presentation LUT Sequence could not be applied ({exc}); ignored")
        elif shape == "INVERSE":
            invert = True
        elif shape == "IDENTITY" and invert:
            notes.append(
                "MONOCHROME1 image with Presentation LUT Shape IDENTITY; followed "
                "MONOCHROME1 (minimum is white)"
            )
        elif shape not in (None, "IDENTITY"):
            notes.append(f"Presentation LUT Shape {shape!r} is not defined; ignored")
        if invert:
            pixels = 1.0 - pixels
    elif photometric == "PALETTE COLOR" or arr.ndim == 3:
        pixels = _colour(arr, ds, photometric, notes)
    else:
        raise UnreadableFileError(
            f"{name}: photometric interpretation {photometric!r} with "
            f"{props.get('samples_per_pixel')} samples per pixel is not supported; "
            "dxassist reads grey (MONOCHROME1/2) and colour (RGB, YBR, PALETTE COLOR) "
            "images - export the image in one of those"
        )
    if pixels.ndim != 2:
        raise UnreadableFileError(f"{name}: decoded pixel array has shape {pixels.shape}")

    intent = header.code("PresentationIntentType")
    if intent == "FOR PROCESSING" and windowing == "percentile":
        notes.append(
            "image is FOR PROCESSING (raw detector data, not meant for display); a "
            "percentile window was used, so contrast may differ from the clinical image"
        )
    age, age_note = parse_age(header.text("PatientAge"))
    if age_note:
        notes.append(age_note)
    sex = header.code("PatientSex")
    if sex is not None and sex not in {"M", "F", "O"}:
        notes.append(f"PatientSex {sex!r} is not M, F or O; ignored")
        sex = None
    spacing = header.value("PixelSpacing", _spacing) or header.value("ImagerPixelSpacing", _spacing)
    meta = RadiographMeta(
        source_format="dicom",
        modality=modality,
        sop_class_uid=sop_class,
        view_position=header.code("ViewPosition"),
        body_part=header.code("BodyPartExamined"),
        rows=int(pixels.shape[0]),
        columns=int(pixels.shape[1]),
        pixel_spacing_mm=spacing,
        photometric=photometric_stored,
        bits_stored=int(ds.BitsStored),
        manufacturer=header.text("Manufacturer"),
        patient_name=header.text("PatientName", person_name=True),
        patient_id=header.text("PatientID"),
        patient_age_years=age,
        patient_sex=sex,
        burned_in_annotation=header.code("BurnedInAnnotation"),
        presentation_intent=intent,
        study_instance_uid=header.text("StudyInstanceUID"),
        series_instance_uid=header.text("SeriesInstanceUID"),
        sop_instance_uid=header.text("SOPInstanceUID"),
        transfer_syntax_uid=str(ts),
        windowing=windowing,
        number_of_frames=_frames(ds),
        view_hints=_view_hints(ds, header),
    )
    return Radiograph(pixels=pixels.astype(np.float32), meta=meta, warnings=notes)
