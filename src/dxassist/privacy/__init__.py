"""Privacy: pseudonyms for identifiers, DICOM de-identification (PS3.15 Annex E), the
burned-in annotation check and PNG/JPEG metadata stripping.

The link store (original identifiers) is deliberately not exported here: import
:mod:`dxassist.privacy.linkstore` explicitly, from the integration path or admin code only.
"""

from __future__ import annotations

from dxassist.privacy.burnedin import needs_quarantine
from dxassist.privacy.deid import Deidentified, DeidOptions, LinkRecord, deidentify
from dxassist.privacy.imagemeta import strip_image_metadata
from dxassist.privacy.pseudonym import load_or_create_site_secret, patient_key

__all__ = [
    "DeidOptions",
    "Deidentified",
    "LinkRecord",
    "deidentify",
    "load_or_create_site_secret",
    "needs_quarantine",
    "patient_key",
    "strip_image_metadata",
]
