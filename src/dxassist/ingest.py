"""Receiving a file: validate it, keep it durably, record it as a ``received`` study.

Nothing is stored for input that cannot be read; a file is only kept together with its
database row (if the commit fails the file is removed again).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from dxassist.config import Settings
from dxassist.errors import InputError
from dxassist.imaging import load_bytes
from dxassist.imaging.radiograph import Radiograph
from dxassist.pipeline import check_readable
from dxassist.privacy import load_or_create_site_secret, patient_key
from dxassist.store import repository
from dxassist.store.models import Study, new_id

FILES_DIR = "files"


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


def validate(data: bytes, filename: str) -> Radiograph:
    """Load and check `data` as the reading engine would; raises its InputError if unusable."""
    radiograph = load_bytes(data, filename)
    check_readable(radiograph, filename)
    return radiograph


def receive_files(
    settings: Settings, session: Session, files: Sequence[tuple[bytes, str]]
) -> list[Received]:
    """Receive several files all or nothing: every one is validated before any is stored.

    Raises :class:`ReceiveError` listing each unreadable file (nothing is stored). Files
    whose exact bytes were received before are not stored again: the earlier study is
    returned with ``duplicate=True``. The new files and their rows are committed together;
    if the commit fails the files are removed again.
    """
    validated: list[tuple[bytes, str, Radiograph, str]] = []
    problems: list[tuple[str, str]] = []
    for data, filename in files:
        try:
            radiograph = validate(data, filename)
        except InputError as exc:
            problems.append((filename, str(exc)))
            continue
        validated.append((data, filename, radiograph, hashlib.sha256(data).hexdigest()))
    if problems:
        raise ReceiveError(problems)
    secret = load_or_create_site_secret(settings.data_dir)
    out: list[Received] = []
    written: list[Path] = []
    seen: dict[str, Study] = {}
    try:
        for data, filename, radiograph, digest in validated:
            earlier = seen.get(digest) or repository.find_by_sha256(session, digest)
            if earlier is not None:
                out.append(Received(earlier, duplicate=True))
                continue
            meta = radiograph.meta
            rows, columns = radiograph.pixels.shape
            study_id = new_id()
            relpath = Path(FILES_DIR) / study_id
            target = settings.data_dir / relpath
            write_durably(target, data)
            written.append(target)
            study = repository.add_received(
                session,
                study_id=study_id,
                original_filename=filename,
                file_path=relpath.as_posix(),
                sha256=digest,
                modality=meta.modality,
                view=meta.view_position,
                rows=int(rows),
                columns=int(columns),
                study_instance_uid=meta.study_instance_uid,
                series_instance_uid=meta.series_instance_uid,
                sop_instance_uid=meta.sop_instance_uid,
                patient_key=patient_key(meta.patient_id, secret),
                patient_age_years=meta.patient_age_years,
                patient_sex=meta.patient_sex,
                warnings=radiograph.warnings,
            )
            seen[digest] = study
            out.append(Received(study, duplicate=False))
        session.commit()
    except BaseException:
        for target in written:
            with contextlib.suppress(OSError):
                target.unlink()
        session.rollback()
        raise
    return out


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
