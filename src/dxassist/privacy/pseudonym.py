"""Pseudonymous keys: a keyed hash (HMAC-SHA-256) of an identifier with a per-site secret.

The same Patient ID always gives the same key at one site, so a patient's films stay
linked (and a training export can split by patient), while the key cannot be turned back
into the ID without the secret, which never leaves the data folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_FILE = "site-secret"


def load_or_create_site_secret(data_dir: Path) -> bytes:
    """The site's secret from ``<data_dir>/site-secret``; created (mode 0600) if missing."""
    path = data_dir / SECRET_FILE
    with contextlib.suppress(FileNotFoundError):
        value = path.read_bytes().strip()
        if len(value) >= 32:
            return value
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32).encode("ascii")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first (or it is too short): use it
        existing = path.read_bytes().strip()
        if len(existing) < 32:
            raise RuntimeError(
                f"{path} holds a secret shorter than 32 bytes; remove it so a new one is made"
            ) from None
        return existing
    with os.fdopen(fd, "wb") as handle:
        handle.write(value + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return value


def patient_key(patient_id: str | None, secret: bytes) -> str | None:
    """``HMAC-SHA-256(secret, patient_id)`` as 64 hex digits; None for a missing/blank ID."""
    if patient_id is None or not patient_id.strip():
        return None
    digest = hmac.new(secret, patient_id.strip().encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()
