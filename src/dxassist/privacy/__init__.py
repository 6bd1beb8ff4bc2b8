"""Privacy: pseudonyms for identifiers (de-identification and audit follow in issue 6)."""

from __future__ import annotations

from dxassist.privacy.pseudonym import load_or_create_site_secret, patient_key

__all__ = ["load_or_create_site_secret", "patient_key"]
