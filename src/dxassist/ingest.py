"""Receiving a file: validate it, keep it durably, record it as a ``received`` study.

Nothing is stored for input that cannot be read; a file is only kept together with its
database row (if the commit fails the file is removed again).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import logging
import os
import re
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dxassist import timefmt
from dxassist.config import Settings
from dxassist.errors import InputError, NotARadiographError
from dxassist.imaging import load_bytes
from dxassist.imaging.radiograph import Radiograph
from dxassist.pipeline import check_readable
from dxassist.privacy import (
    DeidOptions,
    LinkRecord,
    deidentify,
    load_or_create_site_secret,
    needs_quarantine,
    patient_key,
    strip_image_metadata,
)
from dxassist.privacy.linkstore import LinkStore
from dxassist.store import repository
from dxassist.store.models import Study, new_id, utcnow

FILES_DIR = "files"
#: PS3.15 Basic Profile with Clean Descriptors, Retain Longitudinal Temporal Information
#: with Modified Dates and Retain Patient Characteristics (age, sex: the reader uses them).
DEID_OPTIONS = DeidOptions()
log = logging.getLogger(__name__)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Write `data` to `path` so it survives a crash: temp file, fsync, rename, fsync dir."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


@dataclass(frozen=True)
class Received:
    """One received file: its study, and whether the same bytes had been received before."""

    study: Study
    duplicate: bool


DEFLATED = "1.2.840.10008.1.2.1.99"


def check_inflated_size(data: bytes, filename: str, limit: int) -> None:
    """Refuse a DICOM file in Deflated Explicit VR Little Endian whose dataset inflates to
    more than `limit` bytes (a few MB can inflate to gigabytes), before anything parses it."""
    if len(data) < 144 or data[128:132] != b"DICM" or DEFLATED.encode() not in data[132:1024]:
        return
    if data[132:136] != b"\x02\x00\x00\x00":  # (0002,0000) group length must come first
        return
    meta_length = int.from_bytes(data[140:144], "little")
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total, offset, step = 0, 144 + meta_length, 1 << 20
    try:
        while offset < len(data) or inflater.unconsumed_tail:
            chunk = inflater.unconsumed_tail or data[offset : offset + step]
            if not inflater.unconsumed_tail:
                offset += step
            total += len(inflater.decompress(chunk, step))
            if total > limit:
                raise InputError(
                    f"{filename}: the deflated dataset inflates to more than "
                    f"{limit / 1024 / 1024:g} MB; refused (send it uncompressed or ask the "
                    "administrator to raise DXASSIST_MAX_UPLOAD_MB)"
                )
            if inflater.eof:
                return
    except zlib.error:
        return  # the reader reports the corrupt stream in its own words


def validate(data: bytes, filename: str, max_bytes: int | None = None) -> Radiograph:
    """Load and check `data` as the reading engine would; raises its InputError if unusable."""
    if max_bytes is not None:
        check_inflated_size(data, filename, max_bytes)
    radiograph = load_bytes(data, filename)
    check_readable(radiograph, filename)
    return radiograph


_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_CS_RE = re.compile(r"^[A-Z0-9 _]+$")


def _uid(value: str | None, what: str, warnings: list[str]) -> str | None:
    """A DICOM UID (digits and dots, at most 64 characters) or None, with a warning."""
    if value is None or not value.strip():
        return None
    text = value.strip().rstrip("\x00")
    if len(text) <= 64 and _UID_RE.match(text):
        return text
    warnings.append(f"{what} is not a valid DICOM UID (digits and dots, up to 64); ignored")
    return None


#: The values dxassist keeps of the code strings it stores (others are dropped: a field
#: that should say "PA" or "F" can hold anything, a name or an MRN included).
ALLOWED_CODES: dict[str, frozenset[str]] = {
    "View Position": frozenset(
        {
            "AP",
            "PA",
            "LL",
            "RL",
            "LLD",
            "RLD",
            "LLO",
            "RLO",
            "LAT",
            "LATERAL",
            "LPO",
            "RPO",
            "LAO",
            "RAO",
            "AP SUPINE",
            "AP ERECT",
            "PA ERECT",
        }
    ),
    "Patient Sex": frozenset({"M", "F", "O"}),
    "Modality": frozenset(
        {
            "CR",
            "DX",
            "OT",
            "SC",
            "CT",
            "MR",
            "US",
            "NM",
            "PT",
            "XA",
            "RF",
            "MG",
            "IO",
            "PX",
            "SR",
            "DOC",
            "KO",
            "PR",
            "SEG",
            "RTIMAGE",
            "SM",
            "ES",
            "XC",
            "BMD",
            "OP",
            "REG",
        }
    ),
}


def _code(value: str | None, what: str, limit: int, warnings: list[str]) -> str | None:
    """A DICOM code string from the values dxassist keeps for `what`, or None with a
    warning (which never repeats the value: it may be an identifier)."""
    if value is None or not value.strip():
        return None
    text = value.strip().upper()
    allowed = ALLOWED_CODES.get(what)
    if len(text) <= limit and _CS_RE.match(text) and (allowed is None or text in allowed):
        return text
    warnings.append(f"{what} is not one of the values dxassist expects there; ignored")
    return None


def _text(value: str) -> str:
    """Text as it can be stored in every database: no NUL characters."""
    return value.replace("\x00", "\ufffd")


@dataclass(frozen=True)
class _Checked:
    """What is kept of a validated file until it is stored: the bytes to store (DICOM
    de-identified, PNG/JPEG without metadata), metadata, the link record of a DICOM file
    (original -> pseudonymous identifiers, for the encrypted link store); no pixels (a
    decoded chest film is 10-60 MB of float32; many in one upload would exhaust memory)."""

    data: bytes
    filename: str
    sha256: str
    fields: dict[str, Any]
    link: LinkRecord | None = None


def _fingerprint(data: bytes, secret: bytes) -> str:
    """Keyed hash of the received bytes (the same bytes are the same study): unlike a plain
    SHA-256 it is no fingerprint of identifiable data to anyone without the site secret."""
    return hmac.new(secret, data, hashlib.sha256).hexdigest()


#: Patient-module (group 0010) attributes kept after de-identification: the pseudonymous
#: name and ID, the emptied birth date, and the characteristics the reader uses. Every other
#: group 0010 attribute goes, also those the profile's table does not list (birth date in an
#: alternative calendar, death date...): stricter than the Basic Profile.
PATIENT_KEEP = frozenset({0x00100010, 0x00100020, 0x00100030, 0x00100040, 0x00101010})


def _stricter(ds: pydicom.Dataset) -> None:
    """On top of the profile: no group 0010 attribute but :data:`PATIENT_KEEP`, and Patient
    Sex / View Position only with the values a radiograph has (free text can hide a name)."""
    for elem in list(ds):
        if elem.tag.group == 0x0010 and int(elem.tag) not in PATIENT_KEEP:
            del ds[elem.tag]
    for keyword, what in (("PatientSex", "Patient Sex"), ("ViewPosition", "View Position")):
        value = str(ds.get(keyword) or "").strip().upper()
        if value and value not in ALLOWED_CODES[what]:
            setattr(ds, keyword, "")


def _deidentified(
    data: bytes, filename: str, secret: bytes
) -> tuple[bytes, LinkRecord, str | None]:
    """`data` (a DICOM file) de-identified by the PS3.15 Basic Profile, as bytes to store,
    its link record, and why it must be quarantined (burned-in text), if it must."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
        quarantine = needs_quarantine(ds)
        result = deidentify(ds, secret, DEID_OPTIONS)
        _stricter(result.dataset)
        buffer = io.BytesIO()
        result.dataset.save_as(buffer, enforce_file_format=True)
    except Exception as exc:
        log.warning("%s: de-identification failed: %s: %s", filename, type(exc).__name__, exc)
        raise InputError(
            f"{filename}: the file cannot be de-identified ({type(exc).__name__}), so it is not "
            "stored; export it again from the modality or PACS"
        ) from None
    return buffer.getvalue(), result.record, quarantine


def _pseudonymised(fields: dict[str, Any], record: LinkRecord, source: str) -> None:
    """Put the pseudonymous UIDs (as stored in the de-identified file) into `fields`."""
    # a UID that was missing or invalid in the original stays None (and is refused over
    # DICOM): the pseudonym of garbage is a valid-looking UID
    for key, pseudo in (
        ("study_instance_uid", record.pseudo_study_instance_uid),
        ("series_instance_uid", record.pseudo_series_instance_uid),
        ("sop_instance_uid", record.pseudo_sop_instance_uid),
    ):
        fields[key] = pseudo if fields.get(key) else None
    if fields["sop_instance_uid"]:
        # a file name is free text (often the patient's name or ID): a DICOM instance is
        # shown by its pseudonymous UID, over the network and uploaded alike
        fields["original_filename"] = f"{fields['sop_instance_uid']}.dcm"


def _header_fields(data: bytes, filename: str, secret: bytes, reason: str) -> dict[str, Any]:
    """What is stored of a DICOM instance that is kept but not analysed (a CT, an SR): its
    identifiers from the header, the reason it is skipped. Raises the original reason as
    an InputError if not even the header can be read."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    except Exception:
        raise NotARadiographError(reason) from None
    warnings: list[str] = []

    def text(keyword: str) -> str | None:
        try:
            value = ds.get(keyword)
        except Exception:
            return None
        return None if value is None else str(value)

    return {
        "original_filename": _text(filename),
        "modality": _code(text("Modality"), "Modality", 16, warnings),
        "view": _code(text("ViewPosition"), "View Position", 16, warnings),
        "study_instance_uid": _uid(text("StudyInstanceUID"), "Study Instance UID", warnings),
        "series_instance_uid": _uid(text("SeriesInstanceUID"), "Series Instance UID", warnings),
        "sop_instance_uid": _uid(text("SOPInstanceUID"), "SOP Instance UID", warnings),
        "patient_key": patient_key(text("PatientID"), secret),
        "patient_sex": _code(text("PatientSex"), "Patient Sex", 16, warnings),
        "warnings": warnings,
        "skipped_reason": _text(reason),
    }


def _check(
    data: bytes,
    filename: str,
    secret: bytes,
    *,
    keep_non_chest: bool = False,
    max_bytes: int | None = None,
    source: str = "upload",
    allow_burned_in: bool = False,
) -> _Checked:
    try:
        radiograph = validate(data, filename, max_bytes)
    except NotARadiographError as exc:
        if not keep_non_chest:
            raise
        kept = _header_fields(data, filename, secret, str(exc).removeprefix(f"{filename}: "))
        stored, record, _burned = _deidentified(data, filename, secret)  # never analysed
        kept["original_filename"] = "dicom-instance.dcm"
        _pseudonymised(kept, record, source)
        return _Checked(stored, filename, _fingerprint(data, secret), kept, record)
    meta = radiograph.meta
    rows, columns = radiograph.pixels.shape
    warnings = [_text(w) for w in radiograph.warnings]
    fields: dict[str, Any] = {
        "original_filename": _text(filename),
        "modality": _code(meta.modality, "Modality", 16, warnings),
        "view": _code(meta.view_position, "View Position", 16, warnings),
        "rows": int(rows),
        "columns": int(columns),
        "study_instance_uid": _uid(meta.study_instance_uid, "Study Instance UID", warnings),
        "series_instance_uid": _uid(meta.series_instance_uid, "Series Instance UID", warnings),
        "sop_instance_uid": _uid(meta.sop_instance_uid, "SOP Instance UID", warnings),
        "patient_key": patient_key(meta.patient_id, secret),
        "patient_age_years": meta.patient_age_years,
        "patient_sex": _code(meta.patient_sex, "Patient Sex", 16, warnings),
    }
    fields["warnings"] = warnings
    if meta.source_format == "dicom":
        stored, record, quarantine = _deidentified(data, filename, secret)
        _pseudonymised(fields, record, source)
        if quarantine and not allow_burned_in:
            fields["quarantine_reason"] = (
                f"quarantined for an administrator: {quarantine} (release it once checked, "
                "or set DXASSIST_ALLOW_BURNED_IN=1)"
            )
        return _Checked(stored, filename, _fingerprint(data, secret), fields, record)
    # PNG/JPEG: the pixels only; EXIF, XMP, text chunks and comments are dropped; the name
    # the file was sent under (free text, often the patient's) is not kept either
    fingerprint = _fingerprint(data, secret)
    fields["original_filename"] = f"image-{fingerprint[:10]}.{meta.source_format}"
    return _Checked(strip_image_metadata(data), filename, fingerprint, fields)


def receive_files(
    settings: Settings,
    session: Session,
    files: Sequence[tuple[bytes, str]],
    *,
    source: str = "upload",
    calling_ae: str | None = None,
    keep_non_chest: bool = False,
) -> list[Received]:
    """Receive several files all or nothing: every one is validated before any is stored.

    Raises :class:`ReceiveError` listing each unreadable file (nothing is stored). Files
    whose exact bytes were received before are not stored again: the earlier study is
    returned with ``duplicate=True`` (also when another upload of the same bytes commits
    first, at the same moment: the database refuses a second row with the same SHA-256).
    The new files and their rows are committed together; if the commit fails the files
    are removed again. Header values that cannot be stored as they are (a UID that is not
    a UID, a view that is not a code string) are dropped with a warning.

    `source` ("upload" or "dicom") and `calling_ae` are recorded on each study. With
    `keep_non_chest`, a DICOM instance that is not a chest radiograph (another modality, no
    pixel data, another body part) is stored as a ``skipped`` study with the reason, and
    never analysed; without it, it is refused like any unreadable file.
    """
    secret = load_or_create_site_secret(settings.data_dir)
    checked: list[_Checked] = []
    problems: list[tuple[str, str]] = []
    for data, filename in files:
        try:
            item = _check(
                data,
                filename,
                secret,
                keep_non_chest=keep_non_chest,
                max_bytes=settings.max_upload_bytes,
                source=source,
                allow_burned_in=settings.allow_burned_in,
            )
        except InputError as exc:
            problems.append((filename, str(exc)))
            continue
        missing = [
            name
            for key, name in (
                ("study_instance_uid", "Study Instance UID"),
                ("sop_instance_uid", "SOP Instance UID"),
            )
            if not item.fields.get(key)
        ]
        if source == "dicom" and missing:
            # Type 1 over the network: without them no result can go back to the PACS
            problems.append(
                (
                    filename,
                    f"{filename}: {' and '.join(missing)} missing or not a valid UID; "
                    "fix the modality's export",
                )
            )
            continue
        checked.append(item)
    if problems:
        raise ReceiveError(problems)
    origin = {"source": source, "calling_ae": calling_ae}
    try:
        return _store(settings, session, checked, origin)
    except IntegrityError:
        # the same bytes were committed by a concurrent upload: now they are found
        return _store(settings, session, checked, origin)


def _store(
    settings: Settings,
    session: Session,
    checked: Sequence[_Checked],
    origin: dict[str, Any],
) -> list[Received]:
    out: list[Received] = []
    written: list[Path] = []
    seen: dict[str, Study] = {}
    links: LinkStore | None = None
    try:
        for item in checked:
            earlier = seen.get(item.sha256) or repository.find_by_sha256(session, item.sha256)
            if earlier is None and origin.get("source") == "dicom":
                earlier = _same_instance(session, item)
            if earlier is not None:
                out.append(Received(earlier, duplicate=True))
                continue
            study_id = new_id()
            relpath = Path(FILES_DIR) / study_id
            target = settings.data_dir / relpath
            write_durably(target, item.data)
            written.append(target)
            if item.link is not None:
                # before the row commits: a study is never stored without its way back to
                # the PACS (a stray record, if the commit then fails, is harmless)
                links = links or LinkStore.open(settings.data_dir)
                links.put(item.link)
            study = repository.add_received(
                session,
                study_id=study_id,
                file_path=relpath.as_posix(),
                sha256=item.sha256,
                **item.fields,
                **origin,
            )
            seen[item.sha256] = study
            out.append(Received(study, duplicate=False))
        session.commit()
    except BaseException:
        for target in written:
            with contextlib.suppress(OSError):
                target.unlink()
        session.rollback()
        raise
    return out


def _same_instance(session: Session, item: _Checked) -> Study | None:
    """The study already holding this SOP Instance UID, if any. The PACS may resend an
    instance in another transfer syntax (other bytes, same image: not a new study), or
    resend it with corrected patient details: then the earlier study takes them, with a
    warning saying so (the film, and so the AI read, is the same)."""
    uid = item.fields.get("sop_instance_uid")
    if not uid:
        return None
    earlier = repository.find_by_sop_instance_uid(session, uid)
    if earlier is None:
        return None
    changed = [
        key
        for key in ("patient_key", "patient_sex", "patient_age_years")
        if key in item.fields and item.fields[key] != getattr(earlier, key)
    ]
    if changed:
        for key in changed:
            setattr(earlier, key, item.fields[key])
        note = (
            f"patient details ({', '.join(k.removeprefix('patient_') for k in changed)}) were "
            f"changed by a resend of the same instance at {timefmt.iso(utcnow())}; check the "
            "PACS if that was not a correction"
        )
        earlier.warnings = [*(earlier.warnings or []), note]
        log.warning("study %s: %s", earlier.id, note)
    return earlier


def sweep_orphans(settings: Settings, session: Session, min_age_s: float = 600.0) -> int:
    """Remove received files that have no study row (a server killed between writing a file
    and committing its row) and left-over temp files, if older than `min_age_s` (so an
    upload in flight in another process is never touched). Returns how many were removed."""
    folder = settings.data_dir / FILES_DIR
    if not folder.is_dir():
        return 0
    known = repository.all_file_paths(session)
    now = time.time()
    removed = 0
    for entry in folder.iterdir():
        rel = f"{FILES_DIR}/{entry.name}"
        if rel in known or not entry.is_file():
            continue
        try:
            if now - entry.stat().st_mtime < min_age_s:
                continue
            entry.unlink()
            removed += 1
        except OSError:
            continue
    if removed:
        log.warning("removed %d received file(s) that no study refers to", removed)
    return removed


def receive_file(settings: Settings, session: Session, data: bytes, filename: str) -> Study:
    """Validate `data`, store it under ``<data_dir>/files/<id>`` and commit a study row.

    Raises the reading engine's :class:`~dxassist.errors.InputError` (nothing stored) when
    the bytes are not a readable radiograph. The returned study is ``received`` (or, for
    bytes received before, that earlier study).
    """
    try:
        (received,) = receive_files(settings, session, [(data, filename)])
    except ReceiveError as exc:
        raise exc.first from None
    return received.study


class ReceiveError(InputError):
    """One or more files of an upload cannot be read; none of the upload was stored."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        names = ", ".join(name for name, _ in self.problems)
        super().__init__(
            f"{len(self.problems)} file(s) cannot be read ({names}); nothing was stored: "
            + "; ".join(reason for _, reason in self.problems)
        )

    @property
    def first(self) -> InputError:
        return InputError(self.problems[0][1])
