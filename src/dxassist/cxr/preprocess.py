"""The one preprocessing function shared by training and inference.

Input: a ``Radiograph``'s display-ready pixels (2-D float32 in [0, 1], bone bright).
Output: a (1, size, size) float32 array scaled to [-1, 1] for the network.

Steps, in order:

1. Resize to ``size`` x ``size`` without keeping the aspect ratio. Two of the training
   sources (Kermany, COVID-19 Radiography Database) were distributed already squashed to
   224 x 224, so squashing every image the same way makes all sources look alike to the
   network; real-aspect radiographs (DICOM, NIH, MHH) are squashed by the same rule.
2. Robust contrast normalisation: the 1st and 99th percentiles map to 0 and 1 (clipped).
   This removes most of the difference in windowing between sites and formats.
3. Scale to [-1, 1], the range EfficientNet-Lite was pretrained on.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image

INPUT_SIZE = 224
LOW_PERCENTILE = 1.0
HIGH_PERCENTILE = 99.0


def resize(pixels: npt.NDArray[np.float32], size: int = INPUT_SIZE) -> npt.NDArray[np.float32]:
    """Resize a 2-D float image to ``size`` x ``size`` (area-averaged when shrinking)."""
    if pixels.ndim != 2:
        raise ValueError(f"expected a 2-D grey image, got shape {pixels.shape}")
    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.float32))
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(image, dtype=np.float32)


def normalise_contrast(pixels: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Map the 1st..99th percentile of the image to 0..1 and clip."""
    low, high = (float(v) for v in np.percentile(pixels, [LOW_PERCENTILE, HIGH_PERCENTILE]))
    if high - low < 1e-6:
        return np.zeros_like(pixels, dtype=np.float32)
    out: npt.NDArray[np.float32] = np.clip((pixels - low) / (high - low), 0.0, 1.0).astype(
        np.float32
    )
    return out


def preprocess(pixels: npt.NDArray[np.float32], size: int = INPUT_SIZE) -> npt.NDArray[np.float32]:
    """Turn display-ready radiograph pixels into the network's (1, size, size) input."""
    x = normalise_contrast(resize(pixels, size))
    return ((x - 0.5) / 0.5)[np.newaxis, :, :].astype(np.float32)
