from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

import pydicom
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from dxassist.config import Settings
from dxassist.errors import InputError
from dxassist.imaging import load_bytes
from dxassist.ingest import ReceiveError, receive_file, receive_files
from dxassist.privacy import patient_key
from dxassist.store import Study, StudyStatus, make_engine, make_session_factory
from dxassist.store import repository as repo


def stored_files(settings: Settings) -> list[Path]:
    files = settings.data_dir / "files"
    return sorted(files.iterdir()) if files.exists() else []


@pytest.mark.parametrize("which", ["rg1_uncr", "nih_png"])
def test_receive_real_file(
    which: str, request: pytest.FixtureRequest, settings: Settings, session: Session
) -> None:
    path: Path = request.getfixturevalue(which)
    data = path.read_bytes()
    study = receive_file(settings, session, data, path.name)

    assert study.status == StudyStatus.RECEIVED
    # the name it was sent under is not kept (free text, often the patient's name)
    assert path.stem not in study.original_filename
    assert re.fullmatch(r"(2\.25\.\d+\.dcm|image-[0-9a-f]{10}\.png)", study.original_filename)
    stored = settings.data_dir / study.file_path
    assert stored.is_file()
    assert stored_files(settings) == [stored]  # no temp file left behind
    # the fingerprint is keyed with the site secret (no plain hash of identifiable bytes)
    secret = (settings.data_dir / "site-secret").read_bytes().strip()
    assert study.sha256 == hmac.new(secret, data, hashlib.sha256).hexdigest()
    assert study.sha256 != hashlib.sha256(data).hexdigest()
    # what is stored is not what was sent: DICOM de-identified, PNG without metadata,
    # the pixels unchanged
    kept = stored.read_bytes()
    assert load_bytes(kept, "kept").pixels.tobytes() == load_bytes(data, "sent").pixels.tobytes()
    if which == "rg1_uncr":
        ds = pydicom.dcmread(stored)
        assert ds.PatientIdentityRemoved == "YES"
        assert b"CompressedSamples" not in kept and b"9RG1" not in kept
        assert ds.SOPInstanceUID == study.sop_instance_uid != pydicom.dcmread(path).SOPInstanceUID
    assert study.rows and study.columns

    session.expunge_all()
    row = repo.get(session, study.id)
    assert row is not None and row.status == StudyStatus.RECEIVED
    assert row.sha256 == study.sha256
    if which == "rg1_uncr":
        assert row.modality == "CR"
        assert row.sop_instance_uid
    else:
        assert row.modality is None


def test_bad_file_stores_nothing(settings: Settings, session: Session) -> None:
    with pytest.raises(InputError):
        receive_file(settings, session, b"this is a report, not an image\n" * 20, "x.dcm")
    assert session.scalar(select(func.count()).select_from(Study)) == 0
    assert stored_files(settings) == []


def test_failed_commit_removes_the_file(db_url: str, tmp_path: Path, rg1_uncr: Path) -> None:
    """A database without the study table (never migrated): the insert fails for real."""
    settings = Settings(data_dir=tmp_path / "data", database_url=db_url)
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session, pytest.raises(DBAPIError):
            receive_file(settings, session, rg1_uncr.read_bytes(), rg1_uncr.name)
    finally:
        engine.dispose()
    assert stored_files(settings) == []


def test_same_bytes_twice_is_one_study(
    settings: Settings, session: Session, rg1_uncr: Path
) -> None:
    data = rg1_uncr.read_bytes()
    first = receive_file(settings, session, data, "a.dcm")
    again = receive_file(settings, session, data, "b.dcm")
    assert again.id == first.id
    assert session.scalar(select(func.count()).select_from(Study)) == 1
    assert len(stored_files(settings)) == 1


def test_batch_is_all_or_nothing(
    settings: Settings, session: Session, rg1_uncr: Path, nih_png: Path
) -> None:
    files = [
        (rg1_uncr.read_bytes(), rg1_uncr.name),
        (b"not an image at all", "notes.txt"),
        (nih_png.read_bytes(), nih_png.name),
        (b"", "empty.dcm"),
    ]
    with pytest.raises(ReceiveError) as caught:
        receive_files(settings, session, files)
    assert [name for name, _ in caught.value.problems] == ["notes.txt", "empty.dcm"]
    assert all(reason for _, reason in caught.value.problems)
    assert session.scalar(select(func.count()).select_from(Study)) == 0
    assert stored_files(settings) == []

    received = receive_files(settings, session, [files[0], files[2], files[0]])
    assert [r.duplicate for r in received] == [False, False, True]
    assert received[2].study.id == received[0].study.id
    assert len(stored_files(settings)) == 2


def test_patient_key_is_a_keyed_hash(settings: Settings, session: Session, rg1_uncr: Path) -> None:
    import pydicom

    study = receive_file(settings, session, rg1_uncr.read_bytes(), rg1_uncr.name)
    patient_id = str(pydicom.dcmread(rg1_uncr, stop_before_pixels=True).PatientID)
    assert study.patient_key and len(study.patient_key) == 64
    assert patient_id not in study.patient_key
    assert study.patient_key != hashlib.sha256(patient_id.encode()).hexdigest()
    secret = (settings.data_dir / "site-secret").read_bytes().strip()
    assert study.patient_key == patient_key(patient_id, secret)


def test_the_site_secret_is_the_same_for_racing_first_callers(tmp_path: Path) -> None:
    """Concurrent first uploads once read a half-written secret file (seen in CI)."""
    from concurrent.futures import ThreadPoolExecutor

    from dxassist.privacy import load_or_create_site_secret

    for attempt in range(20):
        folder = tmp_path / f"d{attempt}"
        with ThreadPoolExecutor(8) as pool:
            values = list(pool.map(load_or_create_site_secret, [folder] * 8))
        assert len(set(values)) == 1 and len(values[0]) == 64
        assert [p.name for p in folder.iterdir()] == ["site-secret"]  # no temp file left
