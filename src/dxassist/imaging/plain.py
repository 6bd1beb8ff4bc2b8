"""Read PNG and JPEG radiographs (public data sets, exports, screenshots).

Grey levels are taken as they are (a PNG has no window): 8-bit values are divided by
255, 16-bit ones by 65535 so that 16-bit precision is kept. Colour is converted to grey
with the Rec. 601 luma weights, alpha is dropped, palettes are expanded.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from dxassist.errors import UnreadableFileError
from dxassist.imaging.grey import rgb_to_grey
from dxassist.imaging.radiograph import MAX_PIXELS, Radiograph, RadiographMeta
from dxassist.imaging.sniff import PNG_MAGIC

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_PNG_COLOUR_TYPES = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}


def _png_header(data: bytes) -> tuple[int, int] | None:
    """Return (bit depth, colour type) from a PNG's IHDR chunk."""
    if data.startswith(PNG_MAGIC) and data[12:16] == b"IHDR" and len(data) >= 26:
        return data[24], data[25]
    return None


def _open(data: bytes, name: str, fmt: str, notes: list[str]) -> Image.Image:
    label = fmt.upper()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            opened = Image.open(io.BytesIO(data), formats=[label])
            width, height = opened.size
            if width * height > MAX_PIXELS:
                raise UnreadableFileError(
                    f"{name}: {label} header claims {width}x{height} pixels, far more than "
                    f"any radiograph (limit {MAX_PIXELS // 1_000_000} megapixels); the file "
                    "is corrupt or not a radiograph - export the image again"
                )
            frames = int(getattr(opened, "n_frames", 1))
            opened.load()
            image: Image.Image = ImageOps.exif_transpose(opened) or opened
    except UnreadableFileError:
        raise
    except UnidentifiedImageError as exc:
        raise UnreadableFileError(
            f"{name}: {label} file is corrupt: its header cannot be decoded - export the "
            "image again"
        ) from exc
    except Image.DecompressionBombError as exc:
        raise UnreadableFileError(
            f"{name}: {label} image is too large to be a radiograph ({exc}); the file is "
            "corrupt or not a radiograph - export the image again"
        ) from exc
    except Exception as exc:
        message = str(exc)
        if "truncated" in message.lower() or isinstance(exc, EOFError):
            raise UnreadableFileError(
                f"{name}: {label} file is truncated; the copy or download was interrupted "
                "- copy the file again"
            ) from exc
        raise UnreadableFileError(
            f"{name}: {label} file is corrupt and cannot be decoded "
            f"({type(exc).__name__}: {message}) - export the image again"
        ) from exc
    notes.extend(f"{label}: {w.message}" for w in caught if w.category is not DeprecationWarning)
    if frames > 1:
        notes.append(f"{label} file has {frames} frames; only the first one is read")
    return image


def _to_grey(
    image: Image.Image, png: tuple[int, int] | None, notes: list[str]
) -> tuple[npt.NDArray[np.float64], int]:
    """Return grey pixels in [0, 1] and the bits per sample they came from."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES:
        return np.asarray(image, dtype=np.float64) / 65535.0, 16
    if mode == "I":  # 32-bit integer: Pillow's mode for some 16-bit grey PNGs
        values = np.asarray(image, dtype=np.float64)
        if (png is not None and png[0] == 16) or values.max() > 255:
            return np.clip(values / 65535.0, 0.0, 1.0), 16
        return np.clip(values / 255.0, 0.0, 1.0), 8
    if mode == "1":
        return np.asarray(image, dtype=np.float64), 1
    if mode == "L":
        return np.asarray(image, dtype=np.float64) / 255.0, 8
    if mode == "LA":
        return np.asarray(image.getchannel("L"), dtype=np.float64) / 255.0, 8
    if mode in ("RGB", "RGBA", "RGBX"):
        return rgb_to_grey(np.asarray(image), 255.0, notes), 8
    if mode in ("P", "PA"):
        return rgb_to_grey(np.asarray(image.convert("RGBA")), 255.0, notes), 8
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        lo, hi = float(values.min()), float(values.max())
        notes.append("floating-point image scaled from its minimum to its maximum")
        return (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values), 32
    # CMYK, YCbCr, LAB, HSV...
    return rgb_to_grey(np.asarray(image.convert("RGB")), 255.0, notes), 8


def load_plain(data: bytes, name: str, fmt: str) -> Radiograph:
    """Decode a PNG or JPEG file held in memory.

    Parameters
    ----------
    data:
        The file content.
    name:
        File name used in messages.
    fmt:
        ``"png"`` or ``"jpeg"`` (as found by :func:`dxassist.imaging.sniff.sniff_format`).

    Returns
    -------
    Radiograph
        Grey pixels in [0, 1]; the metadata has only the format, size, mode and bits.

    Raises
    ------
    UnreadableFileError
        If the file is truncated or corrupt.
    """
    notes: list[str] = []
    png = _png_header(data) if fmt == "png" else None
    image = _open(data, name, fmt, notes)
    if png is not None and png[0] == 16 and png[1] in (2, 4, 6):
        notes.append(
            f"16-bit {_PNG_COLOUR_TYPES[png[1]]} PNG read with 8-bit precision (Pillow "
            "limitation); save radiographs as 16-bit greyscale PNG"
        )
    pixels, bits = _to_grey(image, png, notes)
    if pixels.ndim != 2:
        raise UnreadableFileError(f"{name}: unexpected image shape {pixels.shape}")
    meta = RadiographMeta(
        source_format=fmt,
        rows=int(pixels.shape[0]),
        columns=int(pixels.shape[1]),
        photometric=image.mode,
        bits_stored=bits,
    )
    return Radiograph(
        pixels=np.clip(pixels, 0.0, 1.0).astype(np.float32), meta=meta, warnings=notes
    )
