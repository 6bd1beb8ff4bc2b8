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
    """The site's secret from ``<data_dir>/site-secret``; created (mode 0600) if missing.

    Safe when several threads or processes ask at once: the secret is written in full to a
    temporary file first and then linked into place (``link`` fails if the name exists), so
    no one ever reads a half-written secret, and everyone ends with the same one.
    """
    path = data_dir / SECRET_FILE
    with contextlib.suppress(FileNotFoundError):
        value = path.read_bytes().strip()
        if len(value) >= 32:
            return value
        raise RuntimeError(
            f"{path} holds a secret shorter than 32 bytes; remove it so a new one is made"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_hex(32).encode("ascii") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another one was linked first: use it
            os.link(tmp, path)
    finally:
        tmp.unlink()
    return path.read_bytes().strip()


def patient_key(patient_id: str | None, secret: bytes) -> str | None:
    """``HMAC-SHA-256(secret, patient_id)`` as 64 hex digits; None for a missing/blank ID."""
    if patient_id is None or not patient_id.strip():
        return None
    digest = hmac.new(secret, patient_id.strip().encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()
