"""The link store: original identifiers behind the pseudonyms, encrypted, kept apart.

Sending a result back to the PACS needs the original Study/Series/SOP Instance UIDs,
Patient ID and Accession Number; nothing else in dxassist does. They live here, in their
own SQLite file (``<data_dir>/link-store.sqlite``, mode 0600), never in the study
database. Each record (:class:`~dxassist.privacy.deid.LinkRecord`) is encrypted with
AES-256-GCM; the row is found by an HMAC of the pseudonymous Study Instance UID (so the
file shows neither originals nor pseudonyms) and that HMAC is the GCM associated data (a
row moved to another study fails to decrypt).

The key is ``DXASSIST_LINK_KEY`` (64 hex digits) if set, else ``<data_dir>/link-key``
(mode 0600, created on first use). Keep the key away from backups of the data folder
where you can: with the file and not the key the store is unreadable.

Who may read it: only the integration path (result delivery to the PACS, via
:meth:`LinkStore.original_uids`) and administrators. The web views, the API for readers
and the research export must never open it; the lead wires the access control.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dxassist.errors import InputError
from dxassist.privacy.deid import LinkRecord

KEY_FILE = "link-key"
STORE_FILE = "link-store.sqlite"
KEY_ENV = "DXASSIST_LINK_KEY"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS link ("
    " id INTEGER PRIMARY KEY,"
    " study BLOB NOT NULL,"
    " nonce BLOB NOT NULL,"
    " sealed BLOB NOT NULL)"
)


class LinkKeyError(InputError):
    """The link key is missing, malformed, or not the key the store was written with."""


@dataclass(frozen=True)
class Originals:
    """What the PACS knows a study by: original identifiers, and for every pseudonymous
    UID of the study's instances (series, SOP instances, frames of reference ...) its
    original."""

    study_instance_uid: str | None
    patient_id: str | None
    patient_name: str | None
    accession_number: str | None
    uids: dict[str, str] = field(default_factory=dict)  # pseudo -> original
    #: days the stored dates were moved by (add the opposite to get the originals back)
    date_shift_days: int | None = None


def _parse_key(text: str, where: str) -> bytes:
    value = text.strip()
    try:
        key = bytes.fromhex(value)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise LinkKeyError(
            f"{where} must be 64 hex digits (a 256-bit key); make one with "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`"
        )
    return key


def load_or_create_link_key(data_dir: Path) -> bytes:
    """The link key from $DXASSIST_LINK_KEY, else ``<data_dir>/link-key`` (made if missing,
    mode 0600, written in full before it is linked into place)."""
    env = os.environ.get(KEY_ENV)
    if env:
        return _parse_key(env, KEY_ENV)
    path = data_dir / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        return _parse_key(path.read_text("ascii"), str(path))
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # someone else's key won: use it
            os.link(tmp, path)
    finally:
        tmp.unlink()
    return _parse_key(path.read_text("ascii"), str(path))


class LinkStore:
    """put(record) and original_uids(pseudo_study_uid); nothing else is readable."""

    def __init__(self, path: Path, key: bytes) -> None:
        if len(key) != 32:
            raise LinkKeyError("the link key must be 32 bytes")
        self._path = path
        self._aead = AESGCM(key)
        self._index_key = hmac.new(key, b"dxassist-link-index", hashlib.sha256).digest()
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
        check = hmac.new(key, b"dxassist-link-key-check", hashlib.sha256).digest()
        with contextlib.closing(self._connect()) as conn, conn:
            conn.execute(_SCHEMA)
            conn.execute("CREATE INDEX IF NOT EXISTS link_study ON link (study)")
            conn.execute("CREATE TABLE IF NOT EXISTS key_check (digest BLOB NOT NULL)")
            row = conn.execute("SELECT digest FROM key_check").fetchone()
            if row is None:
                conn.execute("INSERT INTO key_check (digest) VALUES (?)", (check,))
            elif not hmac.compare_digest(row[0], check):
                raise LinkKeyError(
                    f"{path} was written with a different link key (check {KEY_ENV} or "
                    f"{KEY_FILE}); it cannot be decrypted with this one"
                )

    @classmethod
    def open(cls, data_dir: Path) -> LinkStore:
        """The store of a data folder, with its key (see the module docstring)."""
        return cls(data_dir / STORE_FILE, load_or_create_link_key(data_dir))

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, timeout=30)
        conn.execute("PRAGMA secure_delete = ON")
        return conn

    def _index(self, pseudo_study_uid: str) -> bytes:
        return hmac.new(self._index_key, pseudo_study_uid.encode("ascii"), hashlib.sha256).digest()

    def put(self, record: LinkRecord) -> None:
        """Store one instance's record under its pseudonymous Study Instance UID."""
        if not record.pseudo_study_instance_uid:
            raise InputError("a link record needs a pseudonymous Study Instance UID")
        study = self._index(record.pseudo_study_instance_uid)
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, record.to_json().encode("utf-8"), study)
        with contextlib.closing(self._connect()) as conn, conn:
            conn.execute(
                "INSERT INTO link (study, nonce, sealed) VALUES (?, ?, ?)", (study, nonce, sealed)
            )

    def original_uids(
        self, pseudo_study_uid: str, pseudo_sop_instance_uid: str | None = None
    ) -> Originals | None:
        """The originals of a study by its pseudonymous UID; None if it is not in the store.

        With `pseudo_sop_instance_uid`, the patient, accession and dates are those of that
        instance's own record, and the UIDs only those of records of the same patient: an
        instance of another patient that reuses the StudyInstanceUID (a mistake, or an
        attack) can never lend its identity to this one. None if that instance has no
        record. Raises :class:`LinkKeyError` if the rows do not decrypt with this key."""
        study = self._index(pseudo_study_uid)
        with contextlib.closing(self._connect()) as conn:
            rows = conn.execute(
                "SELECT nonce, sealed FROM link WHERE study = ? ORDER BY id", (study,)
            ).fetchall()
        if not rows:
            return None
        records: list[LinkRecord] = []
        for nonce, sealed in rows:
            try:
                plain = self._aead.decrypt(nonce, sealed, study)
            except InvalidTag:
                raise LinkKeyError(
                    f"{self._path} cannot be decrypted with this link key (a different "
                    f"{KEY_ENV} or {KEY_FILE} than the one it was written with?)"
                ) from None
            records.append(LinkRecord.from_json(plain.decode("utf-8")))
        last = records[-1]
        if pseudo_sop_instance_uid is not None:
            own = [r for r in records if r.pseudo_sop_instance_uid == pseudo_sop_instance_uid]
            if not own:
                return None
            last = own[-1]
            records = [r for r in records if r.pseudo_patient_id == last.pseudo_patient_id]
        uids: dict[str, str] = {}
        for record in records:
            uids.update({pseudo: original for original, pseudo in record.uids.items()})
        return Originals(
            study_instance_uid=last.study_instance_uid,
            patient_id=last.patient_id,
            patient_name=last.patient_name,
            accession_number=last.accession_number,
            uids=uids,
            date_shift_days=last.date_shift_days,
        )
