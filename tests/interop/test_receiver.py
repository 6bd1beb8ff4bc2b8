"""The DICOM receiver driven by real peers: dcmtk's echoscu/storescu and pynetdicom.

Each instance must be durable (file + row) before "success" is answered; instances that
are not chest films are kept as skipped (or refused, by policy); the allow-list refuses
unknown callers at association.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pynetdicom import AE
from pynetdicom.sop_class import ComputedRadiographyImageStorage
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dxassist.config import Settings
from dxassist.cxr.runtime import CxrModel
from dxassist.interop.receiver import DicomReceiver
from dxassist.jobs import Worker
from dxassist.privacy import load_or_create_site_secret
from dxassist.privacy.deid import pseudo_uid
from dxassist.store.models import Study, StudyStatus
from tests.interop.dicomize import film_as_cr, manifest_test_films

needs_dcmtk = pytest.mark.skipif(
    shutil.which("storescu") is None and not os.environ.get("CI"),
    reason="dcmtk not installed (apt-get install dcmtk)",
)


@pytest.fixture
def receiver(
    settings: Settings, sessions: sessionmaker[Session], model: CxrModel
) -> Iterator[DicomReceiver]:
    worker = Worker(settings, model, sessions)
    r = DicomReceiver(settings, sessions, port=0, host="127.0.0.1", on_stored=worker.wake)
    r.worker = worker
    r.start()
    try:
        yield r
    finally:
        r.stop()


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def studies(sessions: sessionmaker[Session]) -> list[Study]:
    with sessions() as s:
        return list(s.scalars(select(Study).order_by(Study.created_at)))


@needs_dcmtk
def test_echoscu_and_a_storescu_batch_of_real_films_all_reach_ready(
    receiver: DicomReceiver,
    sessions: sessionmaker[Session],
    shared_data: Path,
    tmp_path: Path,
    rg1_uncr: Path,
    rg1_j2kr: Path,
) -> None:
    port = str(receiver.bound_port)
    echo = run("echoscu", "-aet", "MODALITY1", "-aec", "DXASSIST", "127.0.0.1", port)
    assert echo.returncode == 0, echo.stderr

    # eight real test-split films from two sources, as a modality would send them
    films = manifest_test_films(shared_data, 4, ("kermany",)) + manifest_test_films(
        shared_data, 4, ("nih",)
    )
    paths = []
    for i, film in enumerate(films):
        path = tmp_path / f"film{i}.dcm"
        film_as_cr(film, patient_id=f"PAT{i % 3}").save_as(path, enforce_file_format=True)
        paths.append(str(path))
    batch = run("storescu", "-aet", "MODALITY1", "-aec", "DXASSIST", "127.0.0.1", port, *paths)
    assert batch.returncode == 0, batch.stderr
    # the real CR uncompressed, and the same film in JPEG 2000 (proposed as such)
    j2k = run(
        "storescu",
        "-xv",
        "-aet",
        "MODALITY1",
        "-aec",
        "DXASSIST",
        "127.0.0.1",
        port,
        str(rg1_uncr),
        str(rg1_j2kr),
    )
    assert j2k.returncode == 0, j2k.stderr

    got = studies(sessions)
    assert len(got) == len(paths) + 2
    assert all(s.source == "dicom" and s.calling_ae == "MODALITY1" for s in got)
    assert all(s.status == StudyStatus.RECEIVED for s in got)  # stored, not yet analysed
    # the J2K instance arrived compressed and was stored (de-identified) still compressed;
    # the database knows it by its pseudonymous UID only
    secret = load_or_create_site_secret(receiver.settings.data_dir)

    def pseudo(path: Path) -> str:
        return pseudo_uid(
            str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID), secret
        )

    j2k_study = next(s for s in got if s.sop_instance_uid == pseudo(rg1_j2kr))
    kept = pydicom.dcmread(Path(receiver.settings.data_dir) / j2k_study.file_path)
    assert kept.file_meta.TransferSyntaxUID == pydicom.uid.JPEG2000Lossless

    assert receiver.worker.drain() == len(got)
    done = studies(sessions)
    assert [s.status for s in done] == [StudyStatus.READY] * len(done), [
        (s.original_filename, s.failure_reason) for s in done if s.status != StudyStatus.READY
    ]
    # the lossless J2K copy of the CR reads like the uncompressed one
    by_uid = {s.sop_instance_uid: s for s in done}
    a = by_uid[pseudo(rg1_uncr)].probabilities
    b = by_uid[pseudo(rg1_j2kr)].probabilities
    assert a and b and max(abs(a[k] - b[k]) for k in a) < 1e-4
    assert receiver.counts["stored"] == len(got)


@needs_dcmtk
def test_a_ct_is_kept_as_skipped_and_never_analysed(
    receiver: DicomReceiver, sessions: sessionmaker[Session]
) -> None:
    ct = str(get_testdata_file("CT_small.dcm"))
    out = run("storescu", "-aec", "DXASSIST", "127.0.0.1", str(receiver.bound_port), ct)
    assert out.returncode == 0, out.stderr
    (study,) = studies(sessions)
    assert study.status == StudyStatus.SKIPPED
    assert study.modality == "CT"
    assert "CT is not a projection radiograph" in (study.failure_reason or "")
    assert receiver.worker.drain() == 0


def test_a_hand_film_is_skipped_by_body_part(
    receiver: DicomReceiver, sessions: sessionmaker[Session], rg1_uncr: Path
) -> None:
    ds = pydicom.dcmread(rg1_uncr)
    ds.BodyPartExamined = "HAND"
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    assert _store(receiver.bound_port, ds) == 0x0000
    (study,) = studies(sessions)
    assert study.status == StudyStatus.SKIPPED
    assert "Body Part Examined is HAND" in (study.failure_reason or "")


def _store(port: int, ds: pydicom.Dataset, calling: str = "PYNETDICOM") -> int:
    ae = AE(ae_title=calling)
    ae.add_requested_context(ComputedRadiographyImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title="DXASSIST")
    assert assoc.is_established
    try:
        status = assoc.send_c_store(ds)
        return int(status.Status)
    finally:
        assoc.release()


def test_refuse_policy_answers_failure_and_stores_nothing(
    settings: Settings, sessions: sessionmaker[Session], rg1_uncr: Path
) -> None:
    r = DicomReceiver(settings, sessions, port=0, host="127.0.0.1", non_chest="refuse")
    r.start()
    try:
        ds = pydicom.dcmread(rg1_uncr)
        ds.BodyPartExamined = "KNEE"
        assert _store(r.bound_port, ds) == 0xC000
        assert studies(sessions) == []
        # under "refuse" a CT is not even accepted as a presentation context: the
        # association has no context to send it on (pynetdicom then gives it up)
        ae = AE(ae_title="X")
        ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2")
        assoc = ae.associate("127.0.0.1", r.bound_port, ae_title="DXASSIST")
        assert not assoc.is_established
        assert studies(sessions) == []
    finally:
        r.stop()


def test_allow_list_rejects_unknown_calling_aets(
    settings: Settings, sessions: sessionmaker[Session], rg1_uncr: Path
) -> None:
    r = DicomReceiver(settings, sessions, port=0, host="127.0.0.1", allowed_aets=["MODALITY1"])
    r.start()
    try:
        ae = AE(ae_title="INTRUDER")
        ae.add_requested_context(ComputedRadiographyImageStorage)
        assoc = ae.associate("127.0.0.1", r.bound_port, ae_title="DXASSIST")
        assert assoc.is_rejected
        assert _store(r.bound_port, pydicom.dcmread(rg1_uncr), calling="MODALITY1") == 0
        assert [s.calling_ae for s in studies(sessions)] == ["MODALITY1"]
    finally:
        r.stop()


def test_storage_failure_is_never_answered_with_success(
    sessions: sessionmaker[Session], settings: Settings, rg1_uncr: Path
) -> None:
    # the data folder's files/ is a plain file: nothing can be written there
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "files").write_bytes(b"")
    r = DicomReceiver(settings, sessions, port=0, host="127.0.0.1")
    r.start()
    try:
        assert _store(r.bound_port, pydicom.dcmread(rg1_uncr)) == 0xA700
        assert studies(sessions) == []
        assert r.counts["failed"] == 1
    finally:
        r.stop()


def test_the_same_instance_sent_twice_is_one_study(
    receiver: DicomReceiver, sessions: sessionmaker[Session], rg1_uncr: Path
) -> None:
    ds = pydicom.dcmread(rg1_uncr)
    assert _store(receiver.bound_port, ds) == 0
    assert _store(receiver.bound_port, ds) == 0
    assert len(studies(sessions)) == 1
    assert receiver.counts == {**receiver.counts, "stored": 1, "duplicate": 1}
