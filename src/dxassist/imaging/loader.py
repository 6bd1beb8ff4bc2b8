"""The two entry points: a path or bytes in, a :class:`Radiograph` out.

Whatever goes wrong with the input surfaces as an :class:`~dxassist.errors.InputError`
subclass whose message names the file, the problem and what to do; an unexpected
exception from a decoder is wrapped in :class:`~dxassist.errors.UnreadableFileError`.
"""

from __future__ import annotations

import os
from pathlib import Path

from dxassist.errors import DxAssistError, UnreadableFileError
from dxassist.imaging.dicom import load_dicom
from dxassist.imaging.plain import load_plain
from dxassist.imaging.radiograph import Radiograph
from dxassist.imaging.sniff import describe_content, sniff_format


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
        Empty, truncated, corrupt or not a DICOM/PNG/JPEG file.
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
            return load_dicom(data, filename)
        return load_plain(data, filename, fmt)
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
        Missing, a directory, unreadable, empty, truncated, corrupt or of another format.
    NotARadiographError
        A DICOM file without pixel data or of another modality (CT, MR, US...).
    MissingDecoderError
        A DICOM compression for which no decoder package is installed.
    """
    file = Path(os.fspath(path))
    if file.is_dir():
        raise UnreadableFileError(
            f"{file}: is a directory, not a file; give the path of one image file"
        )
    try:
        data = file.read_bytes()
    except FileNotFoundError as exc:
        raise UnreadableFileError(f"{file}: file not found; check the path") from exc
    except PermissionError as exc:
        raise UnreadableFileError(
            f"{file}: permission denied; check the file's access rights"
        ) from exc
    except OSError as exc:
        raise UnreadableFileError(f"{file}: cannot be read ({exc.strerror or exc})") from exc
    return load_bytes(data, str(file))
