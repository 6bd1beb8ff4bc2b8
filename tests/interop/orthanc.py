"""A real Orthanc (Debian package ``orthanc``, with ``orthanc-dicomweb``) for tests and
benchmarks: started on free ports with a throw-away storage folder, dxassist declared as
a modality, stopped afterwards."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def orthanc_available() -> bool:
    return Path(ORTHANC).is_file()


@dataclass
class Orthanc:
    """A running Orthanc: REST at ``url``, DICOM at ``aet@127.0.0.1:dicom_port``."""

    process: subprocess.Popen[bytes]
    folder: Path
    http_port: int
    dicom_port: int
    aet: str = "ORTHANC"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    @property
    def destination(self) -> str:
        return f"{self.aet}@127.0.0.1:{self.dicom_port}"

    def get(self, path: str, **kwargs: Any) -> Any:
        response = httpx.get(self.url + path, timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, content: bytes | str, **kwargs: Any) -> Any:
        response = httpx.post(self.url + path, content=content, timeout=120, **kwargs)
        response.raise_for_status()
        return response.json()

    def file(self, instance_id: str) -> bytes:
        response = httpx.get(f"{self.url}/instances/{instance_id}/file", timeout=30)
        response.raise_for_status()
        return response.content

    def instances_of_study(self, study_uid: str) -> list[dict[str, Any]]:
        """Every instance Orthanc holds of a study, with its main DICOM tags."""
        found = self.post(
            "/tools/find",
            json.dumps(
                {"Level": "Instance", "Query": {"StudyInstanceUID": study_uid}, "Expand": True}
            ),
        )
        return list(found)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


def start_orthanc(
    folder: Path,
    modalities: dict[str, tuple[str, str, int]],
    *,
    accepted_syntaxes: list[str] | None = None,
    dicom_port: int | None = None,
) -> Orthanc:
    """Start Orthanc with storage in `folder` and `modalities` (name -> (AET, host, port))."""
    folder.mkdir(parents=True, exist_ok=True)
    http_port = free_port()
    dicom_port = dicom_port or free_port()
    config: dict[str, Any] = {
        "Name": "dxassist-test-pacs",
        "StorageDirectory": str(folder / "db"),
        "IndexDirectory": str(folder / "db"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpServerEnabled": True,
        "DicomServerEnabled": True,
        "DicomModalities": {k: list(v) for k, v in modalities.items()},
        "DicomScuTimeout": 60,
        "StableAge": 1,
        "Plugins": [str(DICOMWEB_PLUGIN)] if DICOMWEB_PLUGIN.is_file() else [],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    if accepted_syntaxes is not None:
        config["AcceptedTransferSyntaxes"] = accepted_syntaxes
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = (folder / "orthanc.log").open("wb")
    process = subprocess.Popen(
        [ORTHANC, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT
    )
    orthanc = Orthanc(process, folder, http_port, dicom_port)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                "Orthanc exited at start: " + (folder / "orthanc.log").read_text()[-2000:]
            )
        try:
            orthanc.get("/system")
            return orthanc
        except httpx.HTTPError:
            time.sleep(0.1)
    orthanc.stop()
    raise RuntimeError("Orthanc did not answer within 30 s")
