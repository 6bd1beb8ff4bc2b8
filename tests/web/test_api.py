"""The JSON API as a client drives it, on SQLite and on PostgreSQL, with real radiographs."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from dxassist.cxr.manifest import read_manifest
from dxassist.cxr.runtime import CxrModel
from dxassist.imaging import load_file
from dxassist.pipeline import read_file
from dxassist.store import Study, StudyStatus
from dxassist.store import repository as repo
from tests.web.conftest import Service, form_token, login_fields

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def upload(service: Service, *paths: Path, client: Any = None) -> list[dict[str, Any]]:
    client = client or service.radiologist
    files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
    response = client.post("/api/v1/studies", files=files)
    assert response.status_code == 202, response.text
    studies: list[dict[str, Any]] = response.json()["studies"]
    return studies


def stored_files(service: Service) -> list[Path]:
    folder = service.settings.data_dir / "files"
    return sorted(folder.iterdir()) if folder.exists() else []


def n_studies(service: Service) -> int:
    with service.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(Study)) or 0)


@pytest.fixture
def nih_pngs(shared_data: Path) -> list[Path]:
    pngs = sorted((shared_data / "cxr" / "nih").glob("*.png"))[:6]
    assert len(pngs) == 6
    return pngs


# --- accounts and access ---------------------------------------------------------------


def test_anonymous_is_refused_and_pages_redirect_to_login(service: Service) -> None:
    client = service.anonymous
    for path in ("/api/v1/worklist", "/api/v1/studies/x", "/api/v1/labels.csv"):
        r = client.get(path)
        assert r.status_code == 401
        assert "log in" in r.json()["detail"]
    r = client.post("/api/v1/studies", files=[("files", ("a.png", b"x"))])
    assert r.status_code == 401
    page = client.get("/studies/abc?x=1", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/studies/abc%3Fx%3D1"
    assert client.get("/login").status_code == 200


def test_login_logout_and_cookie_flags(service: Service) -> None:
    client = service.anonymous
    bad = client.post(
        "/login", data=login_fields(client, username="rad1", password="wrong password!")
    )
    assert bad.status_code == 401 and "Wrong user name or password" in bad.text
    unknown = client.post("/login", data=login_fields(client, username="nobody", password="x" * 12))
    assert unknown.status_code == 401
    ok = client.post(
        "/login",
        data=login_fields(
            client, username="RAD1", password="correct horse battery", next="/upload"
        ),
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/upload"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    me = client.get("/api/v1/me").json()
    assert (me["username"], me["role"]) == ("rad1", "radiologist")
    assert "studies:review" in me["permissions"] and "audit:read" not in me["permissions"]
    # after logout the same cookie no longer works
    token = client.cookies.get("dxassist_session")
    assert client.post("/logout", data={"csrf_token": form_token(client, "/")}).status_code == 200
    client.cookies.set("dxassist_session", token or "")
    assert client.get("/api/v1/me").status_code == 401


def test_login_never_redirects_off_site(service: Service) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        r = service.anonymous.post(
            "/login",
            data=login_fields(
                service.anonymous, username="rad1", password="correct horse battery", next=target
            ),
            follow_redirects=False,
        )
        assert r.headers["location"] == "/"


def test_tokens_roles_and_cross_site_requests(service: Service) -> None:
    assert service.admin.get("/api/v1/me").json()["role"] == "admin"
    bad = service.anonymous.get("/api/v1/me", headers={"Authorization": "Bearer dxa_nope"})
    assert bad.status_code == 401 and "unknown or revoked" in bad.json()["detail"]
    basic = service.anonymous.get("/api/v1/me", headers={"Authorization": "Basic abc"})
    assert basic.status_code == 401 and "Bearer" in basic.json()["detail"]
    # the training export is for admins
    r = service.radiologist.get("/api/v1/labels.csv")
    assert r.status_code == 403 and "admin" in r.json()["detail"]
    # a form posted from another site with the radiologist's cookie is refused
    r = service.radiologist.post(
        "/api/v1/studies/x/retry", headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 403 and "cross-site" in r.json()["detail"]
    same = service.radiologist.post(
        "/api/v1/studies/x/retry", headers={"Origin": "http://testserver"}
    )
    assert same.status_code == 404  # passed the check, then: no such study


def test_security_headers_health_and_openapi(service: Service) -> None:
    r = service.anonymous.get("/healthz")
    assert r.json()["status"] == "ok"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in r.headers["content-security-policy"]
    ready = service.anonymous.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    paths = service.anonymous.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/studies",
        "/api/v1/worklist",
        "/api/v1/studies/{study_id}",
        "/api/v1/studies/{study_id}/image.png",
        "/api/v1/studies/{study_id}/heatmap.png",
        "/api/v1/studies/{study_id}/review",
        "/api/v1/studies/{study_id}/retry",
        "/api/v1/labels.csv",
    ):
        assert path in paths


# --- ingest ----------------------------------------------------------------------------


def test_upload_is_durable_before_the_answer_then_analysed(
    service: Service, rg1_uncr: Path, nih_png: Path, model: CxrModel, tmp_path: Path
) -> None:
    studies = upload(service, rg1_uncr, nih_png)
    # shown by a pseudonymous name, never the one it was sent under (often the patient's)
    names = [s["original_filename"] for s in studies]
    assert names[0].startswith("2.25.") and names[0].endswith(".dcm")
    assert names[1].startswith("image-") and nih_png.stem not in names[1]
    assert all(s["status"] == "received" and not s["duplicate"] for s in studies)
    # the worker has not run: the files and rows exist already
    assert len(stored_files(service)) == 2
    for s in studies:
        detail = service.radiologist.get(s["url"]).json()
        assert detail["status"] == "received" and detail["ai"] is None
        assert detail["urls"]["heatmap"] is None
        # the image can be looked at before the AI has read it
        img = service.radiologist.get(detail["urls"]["image"])
        assert img.status_code == 200 and img.content[:8] == PNG_MAGIC
        assert service.radiologist.get(f"{s['url']}/heatmap.png").status_code == 409

    assert service.drain() == 2
    for s, path in zip(studies, (rg1_uncr, nih_png), strict=True):
        detail = service.radiologist.get(s["url"]).json()
        assert detail["status"] == "ready"
        # the same numbers as `dxassist read` on the same file
        expected = read_file(path, model, None)
        for name, p in expected.reading.probabilities.items():
            assert math.isclose(detail["ai"]["probabilities"][name], p, abs_tol=1e-6)
        assert detail["ai"]["priority"] == str(expected.reading.priority)
        assert detail["ai"]["top_finding"] == expected.reading.top_finding
        assert detail["warnings"] == expected.warnings
        assert detail["ai"]["model"] == {"name": model.info.name, "version": model.info.version}
        assert detail["ai"]["heatmap_finding"] == expected.reading.heatmap_finding
        assert detail["ai"]["thresholds"] == {
            "priority": model.info.thresholds.priority,
            "urgent": model.info.thresholds.urgent,
        }

        image = Image.open(io.BytesIO(service.radiologist.get(detail["urls"]["image"]).content))
        layer_r = service.radiologist.get(detail["urls"]["heatmap_layer"])
        layer = Image.open(io.BytesIO(layer_r.content))
        overlay = service.radiologist.get(detail["urls"]["heatmap"])
        assert overlay.status_code == 200 and overlay.content[:8] == PNG_MAGIC
        assert image.mode == "L" and layer.mode == "RGBA"
        assert layer.size == image.size
        rows, cols = load_file(path).pixels.shape
        assert max(image.size) == min(2048, max(rows, cols))
        alpha = np.asarray(layer)[..., 3]
        assert alpha.max() == 255 and (alpha == 0).mean() > 0.2  # a hot spot, cold elsewhere
    cr = service.radiologist.get(studies[0]["url"]).json()
    assert cr["modality"] == "CR" and cr["image"]["sop_instance_uid"]
    # the patient is shown by the site's pseudonym, never by name or ID
    import pydicom

    ds = pydicom.dcmread(rg1_uncr, stop_before_pixels=True)
    assert cr["patient"]["pseudonym"].startswith("P-") and len(cr["patient"]["pseudonym"]) == 10
    assert cr["patient"]["sex"] == (str(ds.get("PatientSex", "")) or None)
    text = service.radiologist.get(studies[0]["url"]).text
    assert str(ds.PatientID) not in text and str(ds.PatientName) not in text
    png = service.radiologist.get(studies[1]["url"]).json()
    assert png["patient"] == {"pseudonym": None, "age_years": None, "sex": None}


def test_unreadable_uploads_are_refused_and_nothing_is_stored(
    service: Service, rg1_uncr: Path, tmp_path: Path
) -> None:
    text = b"Chest X-ray report: no acute findings.\n" * 10
    r = service.radiologist.post("/api/v1/studies", files=[("files", ("report.dcm", text))])
    assert r.status_code == 422
    body = r.json()["detail"]
    assert body["files"][0]["file"] == "report.dcm"
    assert "nothing was stored" in body["message"]
    # one bad file in a batch refuses the batch: the good one is not half-stored either
    r = service.radiologist.post(
        "/api/v1/studies",
        files=[
            ("files", (rg1_uncr.name, rg1_uncr.read_bytes())),
            ("files", ("empty.png", b"")),
            ("files", ("cut.dcm", rg1_uncr.read_bytes()[:4000])),
        ],
    )
    assert r.status_code == 422
    names = [f["file"] for f in r.json()["detail"]["files"]]
    assert names == ["empty.png", "cut.dcm"]
    assert all(f["error"] for f in r.json()["detail"]["files"])
    not_multipart = service.radiologist.post("/api/v1/studies", data={"x": "1"})
    assert not_multipart.status_code == 415 and "multipart" in not_multipart.json()["detail"]
    wrong_field = service.radiologist.post(
        "/api/v1/studies", files=[("image", (rg1_uncr.name, rg1_uncr.read_bytes()))]
    )
    assert wrong_field.status_code == 422
    assert "no 'files' part" in wrong_field.json()["detail"] and "'image'" in wrong_field.text
    assert n_studies(service) == 0 and stored_files(service) == []


def test_upload_limit(service: Service, rg1_uncr: Path) -> None:
    from dataclasses import replace

    service.app.state.dx.settings = replace(service.settings, max_upload_mb=1.0)
    r = service.radiologist.post(
        "/api/v1/studies", files=[("files", (rg1_uncr.name, rg1_uncr.read_bytes()))]
    )
    assert r.status_code == 413 and "over the 1 MB limit" in r.json()["detail"]
    assert n_studies(service) == 0 and stored_files(service) == []


def test_same_file_twice_is_one_study(service: Service, nih_png: Path) -> None:
    (first,) = upload(service, nih_png)
    (again,) = upload(service, nih_png)
    assert again["duplicate"] and again["id"] == first["id"]
    assert n_studies(service) == 1


# --- worklist --------------------------------------------------------------------------


def _make_ready(service: Service, name: str, priority: str | None, minutes: int) -> str:
    base = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    with service.sessions() as s:
        study = repo.add_received(s, original_filename=name, file_path=f"files/{name}", sha256=name)
        study.created_at = base + timedelta(minutes=minutes)
        s.commit()
        if priority == "failed":
            repo.mark_failed(s, study.id, "the model could not read it")
        elif priority is not None:
            repo.mark_ready(
                s,
                study.id,
                probabilities={"normal": 0.3, "bacterial_pneumonia": 0.7},
                abnormal=0.7,
                priority=priority,
                top_finding="bacterial_pneumonia",
                heatmap_path=None,
                warnings=["w"],
                model_name="m",
                model_version="1",
            )
        return study.id


def test_worklist_order_filters_and_paging(service: Service) -> None:
    plan = [
        ("routine-1", "routine", 0),
        ("urgent-2", "urgent", 120),
        ("priority-1", "priority", 30),
        ("urgent-1", "urgent", 60),
        ("waiting", None, 10),
        ("failed", "failed", 5),
        ("next-day", "urgent", 24 * 60),
    ]
    ids = {name: _make_ready(service, name, p, m) for name, p, m in plan}
    client = service.radiologist

    def names(**params: Any) -> list[str]:
        r = client.get("/api/v1/worklist", params=params)
        assert r.status_code == 200, r.text
        return [item["original_filename"] for item in r.json()["items"]]

    assert names() == [
        "urgent-1",
        "urgent-2",
        "next-day",
        "priority-1",
        "routine-1",
        "failed",
        "waiting",
    ]
    assert names(priority="urgent") == ["urgent-1", "urgent-2", "next-day"]
    assert names(priority=["priority", "routine"]) == ["priority-1", "routine-1"]
    assert names(status="failed") == ["failed"]
    assert names(status="received,failed") == ["failed", "waiting"]
    assert names(received_from="2026-05-02") == ["next-day"]
    assert names(received_to="2026-05-01", priority="urgent") == ["urgent-1", "urgent-2"]
    assert names(received_from="2026-05-01T08:30:00Z", received_to="2026-05-01T09:30:00Z") == [
        "urgent-1",
        "priority-1",
    ]
    page = client.get("/api/v1/worklist", params={"limit": 2, "offset": 2}).json()
    assert page["total"] == 7 and [i["original_filename"] for i in page["items"]] == [
        "next-day",
        "priority-1",
    ]
    item = client.get("/api/v1/worklist", params={"status": "failed"}).json()["items"][0]
    assert item["failure_reason"] == "the model could not read it"
    assert item["urls"]["retry"] == f"/api/v1/studies/{ids['failed']}/retry"
    assert item["age_seconds"] > 0

    for params, expected in (
        ({"status": "done"}, "status='done' is not one of"),
        ({"priority": "high"}, "priority='high' is not one of"),
        ({"received_from": "yesterday"}, "not a date"),
        ({"limit": 0}, "limit"),
        ({"limit": 100000}, "limit"),
    ):
        r = client.get("/api/v1/worklist", params=params)
        assert r.status_code == 422 and expected in str(r.json()["detail"]), r.text


# --- review, retry and the training export ---------------------------------------------


def test_review_validation_and_the_study_leaving_the_worklist(
    service: Service, rg1_uncr: Path, nih_pngs: list[Path]
) -> None:
    cr, png = upload(service, rg1_uncr, nih_pngs[0])
    client = service.radiologist
    early = client.post(cr["url"] + "/review", json={"labels": ["normal"], "agrees_with_ai": False})
    assert early.status_code == 409 and "still received" in early.json()["detail"]
    service.drain()

    for body, expected in (
        ({"labels": []}, "labels"),
        ({"labels": ["tumour"], "agrees_with_ai": True}, "unknown label"),
        ({"labels": ["normal", "covid19"], "agrees_with_ai": True}, "cannot be combined"),
        ({"labels": ["pneumonia", "viral_pneumonia"], "agrees_with_ai": True}, "typed"),
        ({"labels": ["covid19", "covid19"], "agrees_with_ai": True}, "repeated"),
        ({"labels": ["covid19"]}, "agrees_with_ai"),
        ({"labels": ["covid19"], "agrees_with_ai": True, "note": "x" * 5000}, "note"),
        ({"labels": ["__other_than_ai__"], "agrees_with_ai": True}, "not the AI's top finding"),
    ):
        if body["labels"] == ["__other_than_ai__"]:
            top = client.get(cr["url"]).json()["ai"]["top_finding"]
            body["labels"] = ["normal" if top != "normal" else "covid19"]
        r = client.post(cr["url"] + "/review", json=body)
        assert r.status_code == 422 and expected in str(r.json()["detail"]), (body, r.text)
    assert client.get("/api/v1/worklist").json()["total"] == 2

    r = client.post(
        cr["url"] + "/review",
        json={"labels": ["bacterial_pneumonia", "other"], "agrees_with_ai": False, "note": "RLL"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["next_study_id"] == png["id"]
    assert r.json()["review"]["reviewer"] == "rad1"
    open_ids = [i["id"] for i in client.get("/api/v1/worklist").json()["items"]]
    assert open_ids == [png["id"]]
    reviewed = client.get("/api/v1/worklist", params={"reviewed": "true"}).json()["items"]
    assert [i["id"] for i in reviewed] == [cr["id"]] and reviewed[0]["reviewed_at"]
    assert reviewed[0]["review_labels"] == ["bacterial_pneumonia", "other"]

    # a correction: the newest review counts
    fix = client.post(
        cr["url"] + "/review", json={"labels": ["viral_pneumonia"], "agrees_with_ai": False}
    )
    assert fix.status_code == 201
    detail = client.get(cr["url"]).json()
    assert detail["review"]["labels"] == ["viral_pneumonia"]
    assert detail["review"]["agrees_with_ai"] is False


def test_failed_study_retry_and_review_without_ai(service: Service, nih_pngs: list[Path]) -> None:
    (s,) = upload(service, nih_pngs[1])
    stored = service.settings.data_dir / "files" / s["id"]
    original = stored.read_bytes()
    stored.write_bytes(original[:300])  # damaged on disk after receipt
    service.drain()
    detail = service.radiologist.get(s["url"]).json()
    assert detail["status"] == "failed" and detail["failure_reason"]
    assert detail["urls"]["retry"]
    # a failed study stays on the open worklist: it still needs a radiologist's read
    assert [i["id"] for i in service.radiologist.get("/api/v1/worklist").json()["items"]] == [
        s["id"]
    ]
    stored.write_bytes(original)  # repaired
    r = service.radiologist.post(detail["urls"]["retry"])
    assert r.status_code == 202 and r.json()["status"] == "received"
    again = service.radiologist.post(detail["urls"]["retry"])
    assert again.status_code == 409 and "only a failed study" in again.json()["detail"]
    service.drain()
    assert service.radiologist.get(s["url"]).json()["status"] == "ready"

    (t,) = upload(service, nih_pngs[2])
    (service.settings.data_dir / "files" / t["id"]).write_bytes(b"")
    service.drain()
    with_ai = service.radiologist.post(
        t["url"] + "/review", json={"labels": ["normal"], "agrees_with_ai": True}
    )
    assert with_ai.status_code == 422 and "no AI read" in with_ai.json()["detail"]
    ok = service.radiologist.post(t["url"] + "/review", json={"labels": ["normal"]})
    assert ok.status_code == 201


def test_labels_csv_is_a_manifest_train_accepts(
    service: Service, rg1_uncr: Path, nih_pngs: list[Path], tmp_path: Path
) -> None:
    studies = upload(service, rg1_uncr, *nih_pngs[3:6])
    service.drain()
    labels = ["bacterial_pneumonia", "normal", "pneumonia", "other"]
    for s, label in zip(studies, labels, strict=True):
        top = service.radiologist.get(s["url"]).json()["ai"]["top_finding"]
        r = service.radiologist.post(
            s["url"] + "/review", json={"labels": [label], "agrees_with_ai": label == top}
        )
        assert r.status_code == 201, r.text
    r = service.admin.get("/api/v1/labels.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    manifest = tmp_path / "labels.csv"
    manifest.write_bytes(r.content)
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["label"] for row in rows] == labels
    assert {row["dataset"] for row in rows} == {"local"}
    assert all(row["split"] in ("train", "val", "test") for row in rows)
    # the DICOM carries a Patient ID: exported as the site's keyed pseudonym, not the ID
    with service.sessions() as s:
        cr = repo.get(s, studies[0]["id"])
        assert cr is not None and cr.patient_key
    assert rows[0]["patient_id"] == cr.patient_key
    # PNGs carry none: each counts as its own patient
    assert rows[1]["patient_id"] == f"study-{studies[1]['id']}"

    usable = read_manifest(manifest)  # `other` is left out of training, as in the shared data
    assert [row.label for row in usable] == labels[:3]
    for row in usable:
        assert load_file(row.path).pixels.size > 0


def test_unknown_study_is_404(service: Service) -> None:
    page = service.radiologist.get("/studies/does-not-exist")
    assert page.status_code == 404 and "No study has the id" in page.text
    for suffix in ("", "/image.png", "/heatmap.png", "/heatmap-layer.png"):
        r = service.radiologist.get(f"/api/v1/studies/nope{suffix}")
        assert r.status_code == 404 and "no study" in r.json()["detail"]
    r = service.radiologist.post("/api/v1/studies/nope/review", json={"labels": ["normal"]})
    assert r.status_code == 404


def test_status_is_never_stuck(service: Service, nih_pngs: list[Path]) -> None:
    """An analysis interrupted mid-way (the worker died) is requeued when it starts again."""
    (s,) = upload(service, nih_pngs[0])
    with service.sessions() as session:
        claimed = repo.claim_next(session)
        assert claimed is not None and claimed.status == StudyStatus.ANALYSING
    assert service.radiologist.get(s["url"]).json()["status"] == "analysing"
    assert service.worker.requeue_stale() == 1
    service.drain()
    done = service.radiologist.get(s["url"]).json()
    assert done["status"] == "ready" and done["attempts"] == 2


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_reviews_retrain_and_validate_a_model(
    service: Service, shared_data: Path, tmp_path: Path
) -> None:
    """The feedback loop: films read on the worklist → labels.csv → train → evaluate."""
    pytest.importorskip("torch", reason="training needs the train extra (make test installs it)")
    from dxassist.cli import main

    rows = [
        r
        for r in csv.DictReader((shared_data / "cxr" / "manifest.csv").open())
        if r["dataset"] == "kermany" and r["split"] == "test"
    ][:: 624 // 24][:24]
    studies = upload(service, *(shared_data / "cxr" / r["path"] for r in rows))
    service.drain()
    # PNGs carry no Patient ID (each would be its own patient, split at random): give them
    # fixed pseudonymous keys, as DICOM films of 24 patients would have
    with service.sessions() as session:
        for i, s in enumerate(studies):
            study = repo.get(session, s["id"])
            assert study is not None
            study.patient_key = f"{i:064x}"
        session.commit()
    for s, r in zip(studies, rows, strict=True):
        top = service.radiologist.get(s["url"]).json()["ai"]["top_finding"]
        body = {"labels": [r["label"]], "agrees_with_ai": r["label"] == top}
        assert service.radiologist.post(s["url"] + "/review", json=body).status_code == 201
    manifest = tmp_path / "labels.csv"
    manifest.write_bytes(service.admin.get("/api/v1/labels.csv").content)
    splits = {row.split for row in read_manifest(manifest)}
    assert {"train", "val"} <= splits

    out = tmp_path / "run"
    args = ["--manifest", str(manifest), "--out", str(out), "--epochs", "1", "--batch-size", "8"]
    assert main(["train", *args]) == 0
    onnx = out / "dxassist-cxr-effnetlite0.onnx"
    report = tmp_path / "eval"
    code = main(
        ["evaluate", "--manifest", str(manifest), "--model", str(onnx), "--split", "train",
         "--out", str(report), "--n-boot", "20"]
    )  # fmt: skip
    assert code == 0
    assert (report / "report.json").is_file() and (report / "summary.md").is_file()
