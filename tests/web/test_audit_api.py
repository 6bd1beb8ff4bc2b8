"""The audit trail through the web app, as users drive it: every patient-data read or
write and every security event leaves an entry; admins list it; if it cannot be written,
the request fails with 503."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
from pynetdicom import AE
from sqlalchemy import select, text

from dxassist.audit.trail import verify
from dxassist.interop.receiver import DicomReceiver
from dxassist.store.models import AuditEvent
from tests.web.conftest import PASSWORD, Service, form_token, login_fields


def entries(service: Service) -> list[AuditEvent]:
    with service.sessions() as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def new_entries(service: Service, after: int) -> list[tuple[str, str, str | None]]:
    return [(e.action, e.actor, e.study_id) for e in entries(service) if e.id > after]


def last_id(service: Service) -> int:
    found = entries(service)
    return found[-1].id if found else 0


def upload(service: Service, path: Path) -> dict[str, Any]:
    files = [("files", (path.name, path.read_bytes(), "application/octet-stream"))]
    r = service.radiologist.post("/api/v1/studies", files=files)
    assert r.status_code == 202, r.text
    study: dict[str, Any] = r.json()["studies"][0]
    return study


def test_every_action_leaves_an_entry_and_the_chain_verifies(
    service: Service, rg1_uncr: Path, nih_png: Path
) -> None:
    # the fixture's form login is the first entry
    (first,) = entries(service)
    assert (first.action, first.actor, first.actor_role) == ("login", "rad1", "radiologist")
    assert first.client == "testclient" and first.prev_hash == "0" * 64

    # a failed login keeps the attempted name, never the password
    wrong = "not the password at all"
    r = service.anonymous.post(
        "/login", data=login_fields(service.anonymous, username="rad1", password=wrong)
    )
    assert r.status_code == 401
    (failed,) = [e for e in entries(service) if e.action == "login_failed"]
    assert failed.actor == "rad1" and failed.actor_role is None

    mark = last_id(service)
    study = upload(service, rg1_uncr)
    sid = study["id"]
    assert new_entries(service, mark) == [("study_upload", "rad1", sid)]
    service.drain()

    rad = service.radiologist
    for path, action in (
        (f"/api/v1/studies/{sid}", "study_view"),
        (f"/api/v1/studies/{sid}/image.png", "image_view"),
        (f"/api/v1/studies/{sid}/heatmap.png", "heatmap_view"),
        (f"/api/v1/studies/{sid}/heatmap-layer.png", "heatmap_view"),
        (f"/api/v1/studies/{sid}/fhir", "fhir_view"),
    ):
        mark = last_id(service)
        assert rad.get(path).status_code == 200, path
        assert new_entries(service, mark) == [(action, "rad1", sid)], path

    # the worklist: one entry, and the page's polling of the same view adds none
    mark = last_id(service)
    assert rad.get("/api/v1/worklist").status_code == 200
    assert rad.get("/api/v1/worklist").status_code == 200
    assert new_entries(service, mark) == [("worklist_view", "rad1", None)]
    assert rad.get("/api/v1/worklist?reviewed=true").status_code == 200
    assert new_entries(service, mark)[-1] == ("worklist_view", "rad1", None)
    assert len(new_entries(service, mark)) == 2

    # an unknown study is a 404 and reveals nothing: no entry
    mark = last_id(service)
    assert rad.get("/api/v1/studies/nope").status_code == 404
    assert new_entries(service, mark) == []

    detail = rad.get(f"/api/v1/studies/{sid}").json()
    mark = last_id(service)
    r = rad.post(
        f"/api/v1/studies/{sid}/review",
        json={"labels": [detail["top_finding"]], "agrees_with_ai": True},
    )
    assert r.status_code == 201, r.text
    review = entries(service)[-1]
    assert (review.action, review.study_id) == ("review", sid)
    assert review.detail is not None and detail["top_finding"] in review.detail

    # a failed study retried
    broken = upload(service, nih_png)
    stored = service.settings.data_dir / "files" / broken["id"]
    original = stored.read_bytes()
    stored.write_bytes(original[:300])
    service.drain()
    stored.write_bytes(original)
    mark = last_id(service)
    assert rad.post(f"/api/v1/studies/{broken['id']}/retry").status_code == 202
    assert new_entries(service, mark) == [("retry", "rad1", broken["id"])]

    # admin: resend results, export labels
    mark = last_id(service)
    assert service.admin.post(f"/api/v1/studies/{sid}/deliveries/retry").status_code == 202
    assert service.admin.get("/api/v1/labels.csv").status_code == 200
    assert new_entries(service, mark) == [
        ("results_resend", "boss", sid),
        ("export_training", "boss", None),
    ]

    mark = last_id(service)
    logout = rad.post("/logout", data={"csrf_token": form_token(rad, "/")}, follow_redirects=False)
    assert logout.status_code == 303
    assert new_entries(service, mark) == [("logout", "rad1", None)]

    # no entry holds the password or the file's patient name
    patient = str(pydicom.dcmread(rg1_uncr).PatientName)
    with service.sessions() as s:
        dump = " ".join(str(row) for row in s.execute(select(AuditEvent)).all())
        assert verify(s).intact
    assert wrong not in dump and PASSWORD not in dump
    assert not patient or patient not in dump


def test_admins_list_and_filter_the_trail_others_may_not(service: Service, nih_png: Path) -> None:
    study = upload(service, nih_png)
    service.drain()
    assert service.radiologist.get(f"/api/v1/studies/{study['id']}").status_code == 200

    refused = service.radiologist.get("/api/v1/audit")
    assert refused.status_code == 403 and "audit:read" in refused.json()["detail"]
    assert service.anonymous.get("/api/v1/audit").status_code == 401

    admin = service.admin
    everything = admin.get("/api/v1/audit").json()["items"]
    assert [e["action"] for e in everything][:3] == ["study_view", "study_upload", "login"]
    assert everything[0]["id"] > everything[-1]["id"]  # newest first
    views = admin.get("/api/v1/audit", params={"action": "study_view"}).json()["items"]
    assert [(e["actor"], e["study_id"]) for e in views] == [("rad1", study["id"])]
    by_study = admin.get("/api/v1/audit", params={"study": study["id"]}).json()["items"]
    assert {e["action"] for e in by_study} == {"study_view", "study_upload"}
    by_user = admin.get("/api/v1/audit", params={"user": "boss"}).json()["items"]
    assert {e["action"] for e in by_user} == {"audit_view"}  # viewing the trail is recorded
    assert admin.get("/api/v1/audit", params={"since": "2999-01-01"}).json()["items"] == []
    assert len(admin.get("/api/v1/audit", params={"limit": 1}).json()["items"]) == 1

    bad = admin.get("/api/v1/audit", params={"action": "stroll"})
    assert bad.status_code == 422 and "study_view" in bad.json()["detail"]
    bad = admin.get("/api/v1/audit", params={"since": "yesterday"})
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.json()["detail"]
    assert admin.get("/api/v1/audit", params={"limit": 0}).status_code == 422

    # the page: admins only, script from /static (CSP), nav link shown
    page = admin.get("/audit")
    assert page.status_code == 200 and '<script src="/static/audit.js">' in page.text
    assert 'href="/audit"' in page.text and "<script>" not in page.text
    assert service.radiologist.get("/audit").status_code == 403


def test_no_audit_no_data_503(service: Service, nih_png: Path) -> None:
    study = upload(service, nih_png)
    service.drain()
    with service.sessions() as s:  # the trail is gone (a broken database)
        s.execute(text("DROP TABLE audit_event"))
        s.commit()
    r = service.radiologist.get(f"/api/v1/studies/{study['id']}")
    assert r.status_code == 503 and "audit trail cannot be written" in r.json()["detail"]
    assert "probabilities" not in r.text
    img = service.radiologist.get(f"/api/v1/studies/{study['id']}/image.png")
    assert img.status_code == 503 and not img.content.startswith(b"\x89PNG")
    login = service.anonymous.post(
        "/login", data=login_fields(service.anonymous, username="rad1", password=PASSWORD)
    )
    assert login.status_code == 503 and "dxassist_session" not in login.cookies


def test_dicom_receive_is_recorded_with_the_calling_ae_and_peer(
    service: Service, rg1_uncr: Path
) -> None:
    receiver = DicomReceiver(service.settings, service.sessions, port=0, host="127.0.0.1")
    receiver.start()
    try:
        ds = pydicom.dcmread(rg1_uncr)
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context(str(ds.SOPClassUID))
        assoc = ae.associate("127.0.0.1", receiver.bound_port, ae_title="DXASSIST")
        assert assoc.is_established
        try:
            assert int(assoc.send_c_store(ds).Status) == 0
            assert int(assoc.send_c_store(ds).Status) == 0  # again: a duplicate, recorded
        finally:
            assoc.release()
    finally:
        receiver.stop()
    got = [e for e in entries(service) if e.action == "dicom_receive"]
    assert len(got) == 2 and got[0].study_id == got[1].study_id is not None
    assert all(e.actor == "MODALITY" and e.actor_role == "dicom" for e in got)
    assert all((e.client or "").startswith("127.0.0.1:") for e in got)
    assert '"duplicate":false' in (got[0].detail or "")
    assert '"duplicate":true' in (got[1].detail or "")
