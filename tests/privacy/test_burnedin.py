"""Which instances are held for review because text may be burned into the pixels."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from dxassist.privacy.burnedin import needs_quarantine


@pytest.mark.parametrize(
    ("modality", "burned", "sop_class", "conversion", "held"),
    [
        ("CR", "YES", None, None, True),
        ("CR", None, None, None, False),  # the real CR says nothing: radiographs pass
        ("CR", "NO", None, None, False),
        ("US", None, None, None, True),
        ("US", "NO", None, None, False),
        ("OT", "", None, None, True),
        ("US", "MAYBE", None, None, True),
        ("CR", None, "1.2.840.10008.5.1.4.1.1.7", "DF", True),  # scanned film
        ("DX", None, "1.2.840.10008.5.1.4.1.1.7.2", None, True),  # multi-frame SC
        ("XA", None, "1.2.840.10008.5.1.4.1.1.77.1.1", None, False),  # not SC (VL...)
        ("CR", None, None, "WSD", True),
    ],
)
def test_needs_quarantine(
    rg1_uncr: Path,
    modality: str,
    burned: str | None,
    sop_class: str | None,
    conversion: str | None,
    held: bool,
) -> None:
    ds = pydicom.dcmread(rg1_uncr, stop_before_pixels=True)
    ds.Modality = modality
    if burned is not None:
        ds.BurnedInAnnotation = burned
    if sop_class is not None:
        ds.SOPClassUID = sop_class
    if conversion is not None:
        ds.ConversionType = conversion
    reason = needs_quarantine(ds)
    assert (reason is not None) == held
    if reason is not None:
        assert "Burned In Annotation" in reason
