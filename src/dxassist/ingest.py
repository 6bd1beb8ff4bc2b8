"""Receiving a file: validate it, keep it durably, record it as a ``received`` study.

Nothing is stored for input that cannot be read; a file is only kept together with its
database row (if the commit fails the file is removed again).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from sqlalchemy.orm import Session

from dxassist.config import Settings
from dxassist.imaging import load_bytes
from dxassist.pipeline import check_readable
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


def receive_file(settings: Settings, session: Session, data: bytes, filename: str) -> Study:
    """Validate `data`, store it under ``<data_dir>/files/<id>`` and commit a study row.

    Raises the reading engine's :class:`~dxassist.errors.InputError` (nothing stored) when
    the bytes are not a readable radiograph. The returned study is ``received``.
    """
    radiograph = load_bytes(data, filename)
    check_readable(radiograph, filename)
    meta = radiograph.meta
    rows, columns = radiograph.pixels.shape
    study_id = new_id()
    relpath = Path(FILES_DIR) / study_id
    target = settings.data_dir / relpath
    write_durably(target, data)
    try:
        study = repository.add_received(
            session,
            study_id=study_id,
            original_filename=filename,
            file_path=relpath.as_posix(),
            sha256=hashlib.sha256(data).hexdigest(),
            modality=meta.modality,
            view=meta.view_position,
            rows=int(rows),
            columns=int(columns),
            study_instance_uid=meta.study_instance_uid,
            series_instance_uid=meta.series_instance_uid,
            sop_instance_uid=meta.sop_instance_uid,
            warnings=radiograph.warnings,
        )
        session.commit()
    except BaseException:
        with contextlib.suppress(OSError):
            target.unlink()
        session.rollback()
        raise
    return study
