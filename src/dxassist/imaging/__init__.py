"""Image loading: DICOM, PNG or JPEG chest radiographs in, :class:`Radiograph` out.

>>> from dxassist.imaging import load_file
>>> rg = load_file("chest.dcm")          # doctest: +SKIP
>>> rg.pixels.shape, rg.meta.modality    # doctest: +SKIP
((1955, 1841), 'CR')
"""

from __future__ import annotations

from dxassist.imaging.loader import load_bytes, load_file
from dxassist.imaging.radiograph import Radiograph, RadiographMeta

__all__ = ["Radiograph", "RadiographMeta", "load_bytes", "load_file"]
