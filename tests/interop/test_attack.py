"""Regression tests from an attack pass on the DICOM integration (a hostile or broken
modality, PACS or DICOMweb server). Each test names the finding it pins down."""

from __future__ import annotations

import http.server
import io
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    ComprehensiveSRStorage,
    ComputedRadiographyImageStorage,
    SecondaryCaptureImageStorage,
)
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dxassist.config import DicomDestination, Settings, StowDestination
from dxassist.cxr.runtime import CxrModel
from dxassist.interop.delivery import Sender, _utf8_source, result_objects
from dxassist.interop.receiver import DicomReceiver
from dxassist.interop.result import AiResult
from dxassist.interop.send import DeliveryError, send_cstore, send_stow
from dxassist.interop.sr import build_sr, read_sr_probabilities
from dxassist.jobs import Worker
from dxassist.pipeline import read_file
from dxassist.store.models import Delivery, DeliveryStatus, Study, StudyStatus


def studies(sessions: sessionmaker[Session]) -> list[Study]:
    with sessions() as s:
        return list(s.scalars(select(Study).order_by(Study.created_at)))


def c_store(
    port: int, ds: pydicom.Dataset, called: str = "DXASSIST", syntax: str | None = None
) -> int:
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(str(ds.SOPClassUID), [syntax] if syntax else None)
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if not assoc.is_established:
        return -1
    try:
        return int(assoc.send_c_store(ds).Status)
    finally:
        assoc.release()


@pytest.fixture
def receiver(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[DicomReceiver]:
    r = DicomReceiver(settings, sessions, port=0, host="127.0.0.1")
    r.start()
    yield r
    r.stop()


class Pacs:
    """A pynetdicom PACS accepting SR, SC and CR in the given transfer syntaxes only."""

    def __init__(self, syntaxes: list[str]) -> None:
        self.received: list[pydicom.Dataset] = []
        ae = AE(ae_title="PACS")
        for sop in (
            ComprehensiveSRStorage,
            SecondaryCaptureImageStorage,
            ComputedRadiographyImageStorage,
        ):
            ae.add_supported_context(sop, syntaxes)
        self.server = ae.start_server(
            ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, self._store)]
        )
        self.port = int(self.server.server_address[1])

    def _store(self, event: Any) -> int:
        raw = event.encoded_dataset()
        self.received.append(pydicom.dcmread(io.BytesIO(raw)))
        return 0


def test_f1_dxassist_never_reads_its_own_heatmap_back(
    settings: Settings, sessions: sessionmaker[Session], model: CxrModel, rg1_uncr: Path
) -> None:
    worker = Worker(settings, model, sessions)
    r = DicomReceiver(settings, sessions, port=0, host="127.0.0.1")
    r.start()
    try:
        assert c_store(r.bound_port, pydicom.dcmread(rg1_uncr)) == 0
        worker.drain()
        (study,) = studies(sessions)
        with sessions() as s:
            objects = result_objects(settings, s.get(Study, study.id))  # type: ignore[arg-type]
        # the PACS forwards the whole study back, results included
        for ds in objects:
            assert c_store(r.bound_port, ds) == 0
        assert worker.drain() == 0  # nothing new to analyse
        kept = {s.modality: s for s in studies(sessions)}
        assert kept["OT"].status == StudyStatus.SKIPPED
        assert "dxassist result object" in (kept["OT"].failure_reason or "")
        assert kept["SR"].status == StudyStatus.SKIPPED
    finally:
        r.stop()


def test_f2_results_reach_a_pacs_that_takes_only_implicit_vr(
    model: CxrModel, rg1_uncr: Path
) -> None:
    from dxassist.interop.sc import build_heatmap_sc

    read = read_file(rg1_uncr, model, None)
    result = AiResult.from_read_result(read)
    source = pydicom.dcmread(rg1_uncr, stop_before_pixels=True)
    sr = build_sr(source, result)
    import numpy as np

    sc = build_heatmap_sc(source, np.zeros((64, 60, 3), np.uint8), result)
    pacs = Pacs([ImplicitVRLittleEndian])
    try:
        send_cstore([sr, sc], DicomDestination("PACS", "127.0.0.1", pacs.port), "DXASSIST")
    finally:
        pacs.server.shutdown()
    got_sr, got_sc = pacs.received
    assert got_sr.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert read_sr_probabilities(got_sr) == read_sr_probabilities(sr)
    assert got_sc.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID


class _Http(http.server.BaseHTTPRequestHandler):
    body = b"<html>Login required</html>"
    ctype = "text/html"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", self.ctype)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("body", [b"<html>Login required</html>", b""])
def test_f3_a_200_that_is_not_a_stow_answer_is_not_sent(body: bytes, rg1_uncr: Path) -> None:
    handler = type("H", (_Http,), {"body": body})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/dicom-web"
        with pytest.raises(DeliveryError, match=r"not a STOW-RS response|did not confirm"):
            send_stow([pydicom.dcmread(rg1_uncr)], StowDestination(url))
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    "charset", [["", "ISO 2022 IR 58"], ["ISO 2022 IR 6", "ISO 2022 IR 58"], "ISO_IR 999"]
)
def test_f4_results_build_whatever_the_source_charset(
    charset: Any, model: CxrModel, rg1_uncr: Path, tmp_path: Path
) -> None:
    ds = pydicom.dcmread(rg1_uncr)
    ds.SpecificCharacterSet = charset
    if charset != "ISO_IR 999":  # the PS3.5 Annex K form: GB2312 in G1 after ESC $ ) A
        ds[0x00100010] = pydicom.DataElement(
            0x00100010, "PN", b"Zhang^XiaoDong=\x1b$)A\xd5\xc5^\xd0\xa1\xb6\xab="
        )
    path = tmp_path / "cjk.dcm"
    ds.save_as(path)
    read = read_file(rg1_uncr, model, None)
    source = _utf8_source(pydicom.dcmread(path, stop_before_pixels=True))
    sr = build_sr(source, AiResult.from_read_result(read))
    assert sr.SpecificCharacterSet == "ISO_IR 192"
    if charset != "ISO_IR 999":
        assert str(sr.PatientName).rstrip("=") == "Zhang^XiaoDong=张^小东"


def test_f5_a_deflate_bomb_is_refused_before_it_inflates(
    receiver: DicomReceiver, sessions: sessionmaker[Session], rg1_uncr: Path
) -> None:
    from dxassist.errors import InputError
    from dxassist.ingest import check_inflated_size

    ds = pydicom.dcmread(rg1_uncr)
    ds.add_new(0x00991000, "LO", "bomb")
    ds.add_new(0x00991010, "OB", bytes(300 * 1024 * 1024))
    ds.PixelData = bytes(len(ds.PixelData))  # zeros deflate to almost nothing
    ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    assert len(data) < 2 * 1024 * 1024  # a small file on the wire...
    with pytest.raises(InputError, match="inflates to more than 200 MB"):
        check_inflated_size(data, "bomb.dcm", 200 * 1024 * 1024)
    check_inflated_size(zlib.compress(b"x"), "not-dicom", 10)  # not DICOM: left to the reader


def test_f5_silent_sockets_do_not_lock_modalities_out(
    receiver: DicomReceiver, rg1_uncr: Path
) -> None:
    silent = [socket.create_connection(("127.0.0.1", receiver.bound_port)) for _ in range(12)]
    try:
        time.sleep(0.3)
        assert c_store(receiver.bound_port, pydicom.dcmread(rg1_uncr)) == 0
    finally:
        for s in silent:
            s.close()


def test_f7_a_resend_in_another_syntax_or_with_corrected_patient_is_one_study(
    receiver: DicomReceiver, sessions: sessionmaker[Session], rg1_uncr: Path
) -> None:
    ds = pydicom.dcmread(rg1_uncr)
    assert c_store(receiver.bound_port, ds, syntax=ExplicitVRLittleEndian) == 0
    assert c_store(receiver.bound_port, ds, syntax=ImplicitVRLittleEndian) == 0
    ds.PatientID = "CORRECTED-ID"
    assert c_store(receiver.bound_port, ds) == 0
    (study,) = studies(sessions)
    assert any("changed by a resend" in w for w in study.warnings or [])


def test_f8_missing_uids_and_mismatched_request_are_refused(
    receiver: DicomReceiver, sessions: sessionmaker[Session], rg1_uncr: Path
) -> None:
    ds = pydicom.dcmread(rg1_uncr)
    del ds.StudyInstanceUID
    assert c_store(receiver.bound_port, ds) == 0xC000
    ds = pydicom.dcmread(rg1_uncr)
    ds.StudyInstanceUID = "abc.def"
    assert c_store(receiver.bound_port, ds) == 0xC000
    assert studies(sessions) == []


def test_f9_a_wrong_called_ae_title_is_rejected(receiver: DicomReceiver, rg1_uncr: Path) -> None:
    assert c_store(receiver.bound_port, pydicom.dcmread(rg1_uncr), called="MAIN_PACS") == -1


def test_f6_a_hung_pacs_does_not_hold_up_a_healthy_one(
    settings: Settings, sessions: sessionmaker[Session], model: CxrModel, rg1_uncr: Path
) -> None:
    hung = socket.socket()  # accepts TCP (backlog), never answers an association
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)
    good = Pacs([ExplicitVRLittleEndian])
    dests = (
        DicomDestination("HUNG", "127.0.0.1", hung.getsockname()[1]),
        DicomDestination("PACS", "127.0.0.1", good.port),
    )
    s = Settings(data_dir=settings.data_dir, database_url=settings.database_url, destinations=dests)
    worker = Worker(s, model, sessions)
    r = DicomReceiver(s, sessions, port=0, host="127.0.0.1")
    sender = Sender(s, sessions)
    r.start()
    try:
        assert c_store(r.bound_port, pydicom.dcmread(rg1_uncr)) == 0
        worker.drain()
        start = time.monotonic()
        sender.run_once()
        while len(good.received) < 2 and time.monotonic() - start < 8:
            time.sleep(0.05)
        assert len(good.received) == 2, "the healthy PACS waited for the hung one"
        assert time.monotonic() - start < 8

        def states() -> dict[str, DeliveryStatus]:
            with sessions() as session:
                return {d.destination: d.status for d in session.scalars(select(Delivery))}

        while states()[str(dests[1])] != DeliveryStatus.SENT and time.monotonic() - start < 8:
            time.sleep(0.05)  # the PACS has both objects; the sent mark follows at once
        assert states()[str(dests[1])] == DeliveryStatus.SENT
        assert states()[str(dests[0])] == DeliveryStatus.PENDING
    finally:
        sender.stop()
        r.stop()
        good.server.shutdown()
        hung.close()


def test_a_film_uploaded_first_then_sent_by_the_pacs_gets_its_results_back(
    settings: Settings, sessions: sessionmaker[Session], model: CxrModel, rg1_uncr: Path
) -> None:
    """From a newcomer's trial: the README's upload, then the integration doc's storescu of
    the same sample film, sent nothing to the PACS ("already received")."""
    from dxassist.ingest import receive_files

    pacs = Pacs([ExplicitVRLittleEndian])
    s = Settings(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        destinations=(DicomDestination("PACS", "127.0.0.1", pacs.port),),
    )
    with sessions() as session:
        receive_files(s, session, [(rg1_uncr.read_bytes(), "chest.dcm")])  # the upload
    Worker(s, model, sessions).drain()
    r = DicomReceiver(s, sessions, port=0, host="127.0.0.1")
    r.start()
    sender = Sender(s, sessions)
    try:
        source = pydicom.dcmread(rg1_uncr, stop_before_pixels=True)
        assert c_store(r.bound_port, pydicom.dcmread(rg1_uncr)) == 0
        (study,) = studies(sessions)
        assert study.source == "dicom"
        sender.run_once(wait=True)
        assert len(pacs.received) == 2
        # the PACS gets them under the study's original identifiers, from the link store
        for ds in pacs.received:
            assert ds.StudyInstanceUID == source.StudyInstanceUID
            assert ds.PatientID == source.PatientID
        sr = next(ds for ds in pacs.received if ds.Modality == "SR")
        refs = {
            str(item.ReferencedSOPInstanceUID)
            for item in sr.CurrentRequestedProcedureEvidenceSequence[0]
            .ReferencedSeriesSequence[0]
            .ReferencedSOPSequence
        }
        assert refs == {str(source.SOPInstanceUID)}
    finally:
        sender.stop()
        r.stop()
        pacs.server.shutdown()


def test_burned_in_text_is_quarantined_until_an_admin_releases_it(
    settings: Settings, sessions: sessionmaker[Session], model: CxrModel, rg1_uncr: Path
) -> None:
    from dxassist.store import repository

    worker = Worker(settings, model, sessions)
    r = DicomReceiver(settings, sessions, port=0, host="127.0.0.1")
    r.start()
    try:
        ds = pydicom.dcmread(rg1_uncr)
        ds.BurnedInAnnotation = "YES"
        assert c_store(r.bound_port, ds) == 0  # kept (nothing lost), but held
        (study,) = studies(sessions)
        assert study.status == StudyStatus.QUARANTINED
        assert "Burned In Annotation is YES" in (study.failure_reason or "")
        assert worker.drain() == 0
        with sessions() as session:
            assert repository.first_open(session) is None  # not on the worklist
            repository.release(session, study.id)
        assert worker.drain() == 1
        (study,) = studies(sessions)
        assert study.status == StudyStatus.READY
        # the read itself warns of the burned-in text
        assert any("Burned In Annotation" in w for w in study.warnings or [])
    finally:
        r.stop()


def test_another_patient_reusing_the_study_uid_never_lends_its_identity(
    settings: Settings, sessions: sessionmaker[Session], model: CxrModel, rg1_uncr: Path
) -> None:
    """From a privacy attack pass: one instance with the same StudyInstanceUID but another
    PatientID made the whole study's results go out under that other patient."""
    pacs = Pacs([ExplicitVRLittleEndian])
    s = Settings(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        destinations=(DicomDestination("PACS", "127.0.0.1", pacs.port),),
    )
    r = DicomReceiver(s, sessions, port=0, host="127.0.0.1")
    r.start()
    sender = Sender(s, sessions)
    try:
        real = pydicom.dcmread(rg1_uncr)
        assert c_store(r.bound_port, real) == 0
        intruder = pydicom.dcmread(rg1_uncr)
        intruder.SOPInstanceUID = pydicom.uid.generate_uid()
        intruder.PatientID, intruder.PatientName = "OTHERPAT777", "Doe^Jane"
        intruder.PixelData = bytes(reversed(intruder.PixelData))  # another film
        assert c_store(r.bound_port, intruder) == 0
        Worker(s, model, sessions).drain()
        sender.run_once(wait=True)
        by_source: dict[str, str] = {}
        for ds in pacs.received:
            if ds.Modality == "SR":
                ref = ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
                by_source[str(ref.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)] = str(
                    ds.PatientID
                )
        assert by_source == {
            str(real.SOPInstanceUID): str(real.PatientID),
            str(intruder.SOPInstanceUID): "OTHERPAT777",
        }
    finally:
        sender.stop()
        r.stop()
        pacs.server.shutdown()
