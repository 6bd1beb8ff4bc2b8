"""Display copies of a radiograph: an 8-bit greyscale PNG a browser can show."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

#: Longest side of a display copy: enough for a full-screen viewer with 2x zoom headroom.
MAX_PREVIEW_SIDE = 2048


def preview_size(rows: int, columns: int, max_side: int = MAX_PREVIEW_SIDE) -> tuple[int, int]:
    """(width, height) of the display copy of a rows x columns image."""
    scale = min(1.0, max_side / max(rows, columns))
    return max(1, round(columns * scale)), max(1, round(rows * scale))


def preview(pixels: npt.NDArray[np.float32], max_side: int = MAX_PREVIEW_SIDE) -> Image.Image:
    """The radiograph (pixels in [0, 1], bone bright) as an 8-bit greyscale image."""
    rows, columns = pixels.shape
    grey = Image.fromarray((np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))
    size = preview_size(rows, columns, max_side)
    return grey.resize(size, Image.Resampling.LANCZOS) if size != (columns, rows) else grey


def write_preview(
    path: Path, pixels: npt.NDArray[np.float32], max_side: int = MAX_PREVIEW_SIDE
) -> tuple[int, int]:
    """Write the display copy as a PNG (atomically: own temp file, then rename); its size.

    Two writers of the same path at once (the worker and a viewer asking for the image)
    each write their own temp file; the last rename wins, and both copies are identical.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    image = preview(pixels, max_side)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            image.save(handle, format="PNG", compress_level=1)
        os.chmod(tmp, 0o644)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return image.size
