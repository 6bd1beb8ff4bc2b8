"""End to end with a real PACS: Orthanc sends the real chest CR to a running `dxassist
serve`, dxassist analyses it and sends back a DICOM SR and the heatmap Secondary Capture,
by C-STORE to one Orthanc and by STOW-RS (DICOMweb) to another; the SR's probabilities are
those of `dxassist read --json` on the same file, and both objects pass dciodvfy.

Also: the PACS down when the results are ready -> retried with back-off, sent once it is
back; a CT sent by the PACS is kept as skipped, visible over the API.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from pydicom.data import get_testdata_file

from dxassist.interop.sr import read_sr_probabilities
from dxassist.interop.validate import dciodvfy_errors, dciodvfy_path
from tests.interop.orthanc import Orthanc, free_port, orthanc_available, start_orthanc

pytestmark = pytest.mark.skipif(
    not orthanc_available() and not os.environ.get("CI"),
    reason="Orthanc not installed (apt-get install orthanc orthanc-dicomweb)",
)

SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.33"
SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"
PASSWORD = "a-long-password"


def dxassist(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dxassist.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Dx:
    """A running `dxassist serve` with a DICOM receiver, and an admin API token."""

    proc: subprocess.Popen[bytes]
    url: str
    dicom_port: int
    token: str
    log: Path

    def api(self, path: str) -> Any:
        r = httpx.get(
            self.url + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )
        r.raise_for_status()
        return r.json()

    def post(self, path: str) -> Any:
        r = httpx.post(
            self.url + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )
        r.raise_for_status()
        return r.json()

    def studies(self, status: str | None = None) -> list[dict[str, Any]]:
        query = f"?status={status}" if status else ""
        return list(self.api("/api/v1/worklist" + query)["items"])


@pytest.fixture
def start_dx(tmp_path: Path) -> Iterator[Callable[..., Dx]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(*send_to: str, dicom_port: int | None = None) -> Dx:
        env = {**os.environ, "DXASSIST_DATA_DIR": str(tmp_path / "dx")}
        added = dxassist(
            "user",
            "add",
            "pacsadmin",
            "--role",
            "admin",
            "--password-stdin",
            env=env,
            stdin=PASSWORD + "\n",
        )
        assert added.returncode == 0, added.stderr
        made = dxassist("token", "create", "pacsadmin", "--name", "test", env=env)
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip().split()[-1]
        port, dport = free_port(), dicom_port or free_port()
        args = [
            "serve",
            "--port",
            str(port),
            "--dicom-port",
            str(dport),
            "--dicom-host",
            "127.0.0.1",
            "--ae-title",
            "DXASSIST",
        ]
        for dest in send_to:
            args += ["--send-to", dest]
        log = tmp_path / "serve.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "dxassist.cli", *args],
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"dxassist serve exited:\n{log.read_text()}")
            try:
                return httpx.get(url + "/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("dxassist serve to start", ready, 90)
        return Dx(proc, url, dport, token, log)

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def orthancs(tmp_path: Path) -> Iterator[Callable[..., Orthanc]]:
    started: list[Orthanc] = []

    def start(name: str, dx_port: int, **kwargs: Any) -> Orthanc:
        o = start_orthanc(
            tmp_path / name, {"dxassist": ("DXASSIST", "127.0.0.1", dx_port)}, **kwargs
        )
        started.append(o)
        return o

    yield start
    for o in started:
        o.stop()


def results_in(pacs: Orthanc, study_uid: str) -> dict[str, bytes] | None:
    """The SR and SC files `pacs` holds for a study, once both are there."""
    found: dict[str, bytes] = {}
    for inst in pacs.instances_of_study(study_uid):
        sop_class = (
            inst.get("MainDicomTags", {}).get("SOPClassUID")
            or pydicom.dcmread(
                io.BytesIO(pacs.file(inst["ID"])), stop_before_pixels=True
            ).SOPClassUID
        )
        if sop_class in (SR_CLASS, SC_CLASS):
            found[sop_class] = pacs.file(inst["ID"])
    return found if len(found) == 2 else None


def test_orthanc_sends_the_cr_and_gets_sr_and_heatmap_back_by_cstore_and_stow(
    start_dx: Callable[..., Dx], orthancs: Callable[..., Orthanc], rg1_uncr: Path, tmp_path: Path
) -> None:
    dx_port = free_port()
    pacs = orthancs("pacs", dx_port)  # C-STORE destination, and the sender of the CR
    web = orthancs("web", dx_port)  # DICOMweb destination (STOW-RS)
    dx = start_dx(pacs.destination, web.dicomweb, dicom_port=dx_port)

    uploaded = pacs.post("/instances", rg1_uncr.read_bytes())
    sent = pacs.post(
        "/modalities/dxassist/store",
        json.dumps({"Resources": [uploaded["ID"]], "Synchronous": True}),
    )
    assert sent.get("FailedInstancesCount", 0) == 0, sent

    source = pydicom.dcmread(rg1_uncr, stop_before_pixels=True)
    got = wait_for("SR + SC in the C-STORE PACS", lambda: results_in(pacs, source.StudyInstanceUID))
    got_web = wait_for(
        "SR + SC in the DICOMweb PACS", lambda: results_in(web, source.StudyInstanceUID)
    )

    # the SR's probabilities are what `dxassist read --json` says about the same file
    read = dxassist("read", "--json", "--no-heatmap", str(rg1_uncr), env=dict(os.environ))
    assert read.returncode == 0, read.stderr
    expected = json.loads(read.stdout)["probabilities"]
    for files in (got, got_web):
        sr = pydicom.dcmread(io.BytesIO(files[SR_CLASS]))
        probs = read_sr_probabilities(sr)
        assert {k: round(v, 6) for k, v in probs.items()} == expected
        assert sr.StudyInstanceUID == source.StudyInstanceUID
        sc = pydicom.dcmread(io.BytesIO(files[SC_CLASS]))
        assert sc.StudyInstanceUID == source.StudyInstanceUID
        # results are in new series, not the CR's
        assert len({sr.SeriesInstanceUID, sc.SeriesInstanceUID, source.SeriesInstanceUID}) == 3
        assert sc.PhotometricInterpretation == "RGB"
    # the very same objects (same UIDs) went to both destinations
    for sop_class in (SR_CLASS, SC_CLASS):
        uids = {pydicom.dcmread(io.BytesIO(f[sop_class])).SOPInstanceUID for f in (got, got_web)}
        assert len(uids) == 1

    if dciodvfy_path():
        for name, data in (("sr.dcm", got[SR_CLASS]), ("sc.dcm", got[SC_CLASS])):
            path = tmp_path / name
            path.write_bytes(data)
            assert dciodvfy_errors(path) == [], name

    # dxassist shows where it came from and where the results went
    (row,) = dx.studies()
    assert row["received_via"] == "dicom" and row["calling_ae"] == "ORTHANC"
    detail = dx.api(f"/api/v1/studies/{row['id']}")
    assert {d["destination"]: d["status"] for d in detail["deliveries"]} == {
        pacs.destination: "sent",
        web.dicomweb: "sent",
    }
    # and the same read as FHIR
    bundle = dx.api(f"/api/v1/studies/{row['id']}/fhir")
    observed = {
        e["resource"]["code"]["coding"][0]["code"]: e["resource"]["valueQuantity"]["value"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
    }
    from dxassist.interop.codes import FINDING_CODES

    assert observed == {FINDING_CODES[k].code: v for k, v in expected.items()}


def test_pacs_down_results_wait_and_are_sent_when_it_is_back(
    start_dx: Callable[..., Dx], orthancs: Callable[..., Orthanc], rg1_uncr: Path
) -> None:
    pacs_port = free_port()  # nothing listens there yet: the PACS is down
    dx = start_dx(f"ORTHANC@127.0.0.1:{pacs_port}")
    store = subprocess.run(
        ["storescu", "-aec", "DXASSIST", "127.0.0.1", str(dx.dicom_port), str(rg1_uncr)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert store.returncode == 0, store.stderr

    def failed_once() -> dict[str, Any] | None:
        rows = dx.studies()
        if not rows:
            return None
        (d,) = dx.api(f"/api/v1/studies/{rows[0]['id']}")["deliveries"] or [None]
        return {**d, "id": rows[0]["id"]} if d and d["attempts"] >= 1 else None

    first = wait_for("a failed delivery attempt", failed_once)
    assert first["status"] == "pending"
    assert "could not be reached" in first["last_error"]
    assert first["next_attempt_at"]

    pacs = orthancs("pacs", dx.dicom_port, dicom_port=pacs_port)
    assert dx.post(f"/api/v1/studies/{first['id']}/deliveries/retry") == {"retried": 1}
    source = pydicom.dcmread(rg1_uncr, stop_before_pixels=True)
    wait_for(
        "SR + SC in the PACS once it is back", lambda: results_in(pacs, source.StudyInstanceUID)
    )
    (d,) = dx.api(f"/api/v1/studies/{first['id']}")["deliveries"]
    assert d["status"] == "sent" and d["attempts"] == first["attempts"] + 1


def test_a_ct_from_the_pacs_is_kept_as_skipped_and_visible(
    start_dx: Callable[..., Dx], orthancs: Callable[..., Orthanc]
) -> None:
    dx_port = free_port()
    pacs = orthancs("pacs", dx_port)
    dx = start_dx(pacs.destination, dicom_port=dx_port)
    ct = Path(str(get_testdata_file("CT_small.dcm"))).read_bytes()
    uploaded = pacs.post("/instances", ct)
    sent = pacs.post(
        "/modalities/dxassist/store",
        json.dumps({"Resources": [uploaded["ID"]], "Synchronous": True}),
    )
    assert sent.get("FailedInstancesCount", 0) == 0, sent
    assert dx.studies() == []  # not on the radiologist's worklist
    (row,) = dx.studies("skipped")
    assert row["modality"] == "CT" and "not a projection radiograph" in row["failure_reason"]
    assert dx.api(f"/api/v1/studies/{row['id']}")["deliveries"] == []
