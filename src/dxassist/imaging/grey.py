"""Colour to grey, shared by the DICOM and the PNG/JPEG readers."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

#: Rec. 601 luma weights (those of DICOM YBR_FULL and of Pillow's "L" conversion).
LUMA = np.array([0.299, 0.587, 0.114])


def rgb_to_grey(rgb: npt.NDArray[Any], scale: float, notes: list[str]) -> npt.NDArray[np.float64]:
    """Convert RGB(A) pixels to grey in [0, 1] with the Rec. 601 weights.

    Parameters
    ----------
    rgb:
        Array of shape (rows, columns, 3 or 4); a fourth (alpha) channel is ignored.
    scale:
        The maximum channel value (255 for 8 bits).
    notes:
        Receives a warning if the picture is clearly coloured, i.e. probably not a
        radiograph.

    Returns
    -------
    numpy.ndarray
        float64 grey values in [0, 1].
    """
    channels = rgb[..., :3].astype(np.float64)
    sample = channels[::8, ::8]
    if np.abs(sample - sample.mean(axis=-1, keepdims=True)).mean() / scale > 0.02:
        notes.append("image has colour content; converted to grey - check it is a radiograph")
    grey: npt.NDArray[np.float64] = np.clip(channels @ LUMA / scale, 0.0, 1.0)
    return grey
