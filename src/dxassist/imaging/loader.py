"""The two entry points: a path or bytes in, a :class:`Radiograph` out.

Whatever goes wrong with the input surfaces as an :class:`~dxassist.errors.InputError`
subclass whose message names the file, the problem and what to do; an unexpected
exception from a decoder is wrapped in :class:`~dxassist.errors.UnreadableFileError`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from dxassist.errors import DxAssistError, UnreadableFileError
from dxassist.imaging.dicom import load_dicom
from dxassist.imaging.plain import load_plain
from dxassist.imaging.radiograph import Radiograph
from dxassist.imaging.sniff import describe_content, sniff_format

#: Files larger than this are refused before being read: no chest radiograph comes near
#: it, and reading e.g. a disk image or a video into memory would exhaust it.
MAX_FILE_BYTES = 1 << 30

_SPECIAL_FILES = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _checked(radiograph: Radiograph, filename: str) -> Radiograph:
    """Enforce what every Radiograph promises: 2-D, finite, float32 in [0, 1]."""
    pixels = radiograph.pixels
    if pixels.ndim != 2 or 0 in pixels.shape:
        raise UnreadableFileError(
            f"{filename}: the decoded image has shape {pixels.shape}, not rows x columns; "
            "the file is corrupt - export the image again"
        )
    if not np.isfinite(pixels).all():
        raise UnreadableFileError(
            f"{filename}: the pixel values are not finite numbers (NaN or infinity) once "
            "the file's rescale and window values are applied, so the header is corrupt "
            "- export the image again"
        )
    radiograph.pixels = np.clip(pixels, 0.0, 1.0).astype(np.float32, copy=False)
    return radiograph


def load_bytes(data: bytes, filename: str = "<bytes>") -> Radiograph:
    """Load a chest radiograph from the content of a DICOM, PNG or JPEG file.

    The format is recognised from the content, not from `filename`.

    Parameters
    ----------
    data:
        The whole file content (``bytes``, ``bytearray`` or ``memoryview``).
    filename:
        Name used in error messages and warnings.

    Returns
    -------
    Radiograph
        2-D float32 pixels in [0, 1], bone bright, plus metadata and warnings.

    Raises
    ------
    UnreadableFileError
        Empty, truncated, corrupt, not a DICOM/PNG/JPEG file, or with pixel values that
        are not finite once the header's rescale and window are applied.
    NotARadiographError
        A DICOM file without pixel data or of another modality (CT, MR, US...).
    MissingDecoderError
        A DICOM compression for which no decoder package is installed.
    TypeError
        If `data` is not bytes-like (a programming error, not bad input).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"load_bytes expects bytes, not {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise UnreadableFileError(
            f"{filename}: file is empty (0 bytes); the export or upload failed - send it again"
        )
    fmt = sniff_format(data)
    if fmt is None:
        raise UnreadableFileError(
            f"{filename}: not a DICOM, PNG or JPEG file (the content looks like "
            f"{describe_content(data)}); dxassist reads chest X-rays as DICOM, PNG or JPEG"
        )
    try:
        if fmt == "dicom":
            return _checked(load_dicom(data, filename), filename)
        return _checked(load_plain(data, filename, fmt), filename)
    except (DxAssistError, KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # incl. pyo3 PanicException from Rust-based decoders
        raise UnreadableFileError(
            f"{filename}: the {fmt.upper()} file could not be read "
            f"({type(exc).__name__}: {exc}); it may be corrupt - export it again"
        ) from exc


def load_file(path: str | os.PathLike[str]) -> Radiograph:
    """Load a chest radiograph from a DICOM, PNG or JPEG file.

    Parameters
    ----------
    path:
        Path of the file. Its extension does not matter.

    Returns
    -------
    Radiograph
        2-D float32 pixels in [0, 1], bone bright, plus metadata and warnings.

    Raises
    ------
    UnreadableFileError
        Missing, a directory, a FIFO or device, larger than ``MAX_FILE_BYTES``, unreadable,
        empty, truncated, corrupt, of another format, or with pixel values that are not
        finite once the header's rescale and window are applied.
    NotARadiographError
        A DICOM file without pixel data or of another modality (CT, MR, US...).
    MissingDecoderError
        A DICOM compression for which no decoder package is installed.
    """
    file = Path(os.fspath(path))
    try:
        # stat first: a FIFO would block read_bytes forever, /dev/zero never ends
        info = file.stat()
        if stat.S_ISDIR(info.st_mode):
            raise UnreadableFileError(
                f"{file}: is a directory, not a file; give the path of one image file"
            )
        for is_kind, kind in _SPECIAL_FILES:
            if is_kind(info.st_mode):
                raise UnreadableFileError(
                    f"{file}: is {kind}, not a regular file; save the image to a file "
                    "and give its path"
                )
        if info.st_size > MAX_FILE_BYTES:
            raise UnreadableFileError(
                f"{file}: file is {info.st_size / (1 << 30):.1f} GiB, far larger than any "
                f"chest radiograph (limit {MAX_FILE_BYTES >> 30} GiB); check that this is "
                "the right file"
            )
        data = file.read_bytes()
    except FileNotFoundError as exc:
        raise UnreadableFileError(f"{file}: file not found; check the path") from exc
    except PermissionError as exc:
        raise UnreadableFileError(
            f"{file}: permission denied; check the file's access rights"
        ) from exc
    except OSError as exc:
        raise UnreadableFileError(
            f"{file}: cannot be read ({exc.strerror or exc}); check the path and that "
            "the file is accessible"
        ) from exc
    return load_bytes(data, str(file))
