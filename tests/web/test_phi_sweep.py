"""The PHI sweep end to end: a real chest CR with every Basic Profile attribute planted
(names in Chinese, IDs, dates, addresses, UIDs, private tags, nested sequences) goes in
through the upload API and through C-STORE; then the whole data folder, the database, the
logs and every API response are searched for the planted values. None may appear, except
what the profile with our options keeps (times of day)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE
from sqlalchemy import select

from dxassist.privacy import DeidOptions
from dxassist.store.models import Base
from tests.privacy.phi import Planted, build_phi_instance, identity
from tests.web.conftest import Service


def _encode(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _leaks(where: str, data: bytes, planted: list[Planted]) -> list[str]:
    keep_times = DeidOptions().retain_modified_dates
    return [
        f"{where}: {p.name} {needle!r}"
        for p in planted
        if not (keep_times and p.vr == "TM")
        for needle in p.needles
        if needle in data
    ]


def test_nothing_identifying_is_stored_logged_or_served(
    service: Service, rg1_uncr: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from dxassist.interop.receiver import DicomReceiver

    caplog.set_level(logging.DEBUG)
    uploaded, planted0 = build_phi_instance(rg1_uncr, identity(0), charset="GB18030")
    sent, planted1 = build_phi_instance(rg1_uncr, identity(1), charset="ISO 2022 IR 58")
    planted = planted0 + planted1
    assert len(planted) > 1000

    # 1. through the upload API
    response = service.radiologist.post(
        "/api/v1/studies",
        files=[("files", ("film.dcm", _encode(uploaded), "application/dicom"))],
    )
    assert response.status_code == 202, response.text
    # 2. through C-STORE, as a modality
    receiver = DicomReceiver(service.settings, service.sessions, port=0, host="127.0.0.1")
    receiver.start()
    try:
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context(str(sent.SOPClassUID), str(sent.file_meta.TransferSyntaxUID))
        assoc = ae.associate("127.0.0.1", receiver.bound_port, ae_title="DXASSIST")
        assert int(assoc.send_c_store(sent).Status) == 0
        assoc.release()
    finally:
        receiver.stop()
    assert service.drain() == 2

    # every API response a user can get about these studies
    served: list[tuple[str, bytes]] = []
    worklist = service.radiologist.get("/api/v1/worklist")
    served.append(("worklist", worklist.content))
    ids = [item["id"] for item in worklist.json()["items"]]
    assert len(ids) == 2
    for study_id in ids:
        base = f"/api/v1/studies/{study_id}"
        for path in ("", "/fhir", "/image.png", "/heatmap.png", "/heatmap-layer.png"):
            r = service.radiologist.get(base + path)
            assert r.status_code == 200, (path, r.text)
            served.append((base + path, r.content))
        top = service.radiologist.get(base).json()["ai"]["top_finding"]
        review = service.radiologist.post(
            base + "/review", json={"labels": [top], "agrees_with_ai": True, "note": ""}
        )
        assert review.status_code == 201
        served.append(("review", review.content))
        served.append(("viewer page", service.radiologist.get(f"/studies/{study_id}").content))
    served.append(("labels.csv", service.admin.get("/api/v1/labels.csv").content))
    served.append(("worklist page", service.radiologist.get("/").content))

    # the de-identified research export
    from dxassist.research_export import export_deidentified
    from dxassist.store import repository

    export = service.settings.data_dir.parent / "export"
    with service.sessions() as session:
        summary = export_deidentified(
            service.settings, repository.reviewed_studies(session), export
        )
    assert summary.rows == 2

    leaks: list[str] = []
    for path in (p for p in export.rglob("*") if p.is_file()):
        leaks += _leaks(f"export {path.name}", path.read_bytes(), planted)
    for where, content in served:
        leaks += _leaks(where, content, planted)
    # the whole data folder: stored files, display copies, heatmaps, SR/SC, databases,
    # the (encrypted) link store
    files = [p for p in service.settings.data_dir.rglob("*") if p.is_file()]
    assert any(p.name.startswith("link-store") for p in files)
    for path in files:
        leaks += _leaks(
            str(path.relative_to(service.settings.data_dir)), path.read_bytes(), planted
        )
    # the database, table by table (PostgreSQL too)
    with service.sessions() as session:
        for table in Base.metadata.sorted_tables:
            rows = session.execute(select(table)).all()
            leaks += _leaks(f"table {table.name}", repr(rows).encode("utf-8"), planted)
    # the logs
    leaks += _leaks("logs", caplog.text.encode("utf-8"), planted)
    assert not leaks, f"{len(leaks)} planted values found, e.g. {leaks[:8]}"
