"""The real server as a process: killed with SIGKILL mid-analysis, restarted, nothing lost.

Also drives the first-start experience and the user/token commands as an operator would.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

PASSWORD = "a-long-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dxassist(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dxassist.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


class Server:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dxassist.cli", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail(f"server not ready after 60 s:\n{self.log.read_text()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("DXASSIST_")}
    out["DXASSIST_DATA_DIR"] = str(tmp_path / "data")
    out["PYTHONUNBUFFERED"] = "1"
    return out


@pytest.fixture
def server(env: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    srv = Server(env, tmp_path / "server.log")
    try:
        yield srv
    finally:
        srv.stop()


def statuses(db: Path) -> dict[str, str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        return dict(conn.execute("SELECT id, status FROM study").fetchall())


def test_first_start_user_and_token_commands(server: Server, env: dict[str, str]) -> None:
    server.start()
    assert "No users yet" in server.log.read_text()
    assert "dxassist user add admin --role admin" in server.log.read_text()

    short = dxassist("user", "add", "ana", "--role", "radiologist", "--password-stdin",
                     env=env, stdin="short\n")  # fmt: skip
    assert short.returncode == 3 and "password too short" in short.stderr
    assert "Traceback" not in short.stderr
    ok = dxassist("user", "add", "ana", "--role", "radiologist", "--password-stdin",
                  env=env, stdin=PASSWORD + "\n")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    dup = dxassist("user", "add", "ANA", "--role", "admin", "--password-stdin",
                   env=env, stdin=PASSWORD + "\n")  # fmt: skip
    assert dup.returncode == 3 and "already exists" in dup.stderr
    role = dxassist("user", "add", "bob", "--role", "chief", "--password-stdin", env=env)
    assert role.returncode == 2 and "invalid choice" in role.stderr
    no_tty = dxassist("user", "add", "bob", "--role", "admin", env=env)
    assert no_tty.returncode == 2 and "--password-stdin" in no_tty.stderr
    listed = dxassist("user", "list", env=env)
    assert listed.returncode == 0 and "ana" in listed.stdout and "radiologist" in listed.stdout

    missing = dxassist("token", "create", "nobody", "--name", "x", env=env)
    assert missing.returncode == 2 and "no user 'nobody'" in missing.stderr
    tok = dxassist("token", "create", "ana", "--name", "gateway", env=env)
    assert tok.returncode == 0, tok.stderr
    token = tok.stdout.strip()
    assert token.startswith("dxa_") and "shown only now" in tok.stderr
    me = httpx.get(server.url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert (me.json()["username"], me.json()["role"]) == ("ana", "radiologist")

    with httpx.Client(base_url=server.url, timeout=10) as browser:
        form = browser.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token, form.text
        fields = {"username": "ana", "password": PASSWORD, "csrf_token": token.group(1)}
        assert browser.post("/login", data=fields).status_code == 303


def test_bad_settings_are_reported_not_raised(env: dict[str, str]) -> None:
    bad = dxassist(
        "serve", "--port", str(free_port()), env={**env, "DXASSIST_MAX_UPLOAD_MB": "lots"}
    )
    assert bad.returncode == 2 and "DXASSIST_MAX_UPLOAD_MB='lots'" in bad.stderr
    db = dxassist(
        "user", "list", env={**env, "DXASSIST_DATABASE_URL": "postgresql+psycopg://x@127.0.0.1:1/x"}
    )
    assert db.returncode == 6 and "cannot open the database" in db.stderr
    assert "Traceback" not in db.stderr + bad.stderr


def test_killed_mid_analysis_every_study_still_reaches_ready(
    server: Server, env: dict[str, str], shared_data: Path, rg1_uncr: Path, rg1_j2kr: Path
) -> None:
    server.start()
    dxassist("user", "add", "ana", "--role", "radiologist", "--password-stdin",
             env=env, stdin=PASSWORD + "\n")  # fmt: skip
    token = dxassist("token", "create", "ana", "--name", "t", env=env).stdout.strip()
    auth = {"Authorization": f"Bearer {token}"}
    images = [rg1_uncr, rg1_j2kr, *sorted((shared_data / "cxr" / "nih").glob("*.png"))[:28]]
    files = [("files", (p.name, p.read_bytes())) for p in images]
    r = httpx.post(server.url + "/api/v1/studies", files=files, headers=auth, timeout=120)
    assert r.status_code == 202, r.text
    ids = [s["id"] for s in r.json()["studies"]]
    assert len(set(ids)) == len(images)

    # kill -9 while a study is being analysed
    db = Path(env["DXASSIST_DATA_DIR"]) / "dxassist.db"
    deadline = time.monotonic() + 60
    caught: dict[str, str] = {}
    while time.monotonic() < deadline:
        now = statuses(db)
        if "analysing" in now.values():
            server.kill()
            caught = statuses(db)
            break
        time.sleep(0.002)
    assert caught, "never saw a study in 'analysing' before the queue emptied"
    interrupted = [i for i, s in caught.items() if s == "analysing"]
    assert interrupted and list(caught.values()).count("ready") < len(ids)

    server.port = free_port()
    server.url = f"http://127.0.0.1:{server.port}"
    server.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        items = [httpx.get(f"{server.url}/api/v1/studies/{i}", headers=auth).json() for i in ids]
        if all(item["status"] in ("ready", "failed") for item in items):
            break
        time.sleep(0.5)
    assert [item["status"] for item in items] == ["ready"] * len(ids), server.log.read_text()
    by_id = {item["id"]: item for item in items}
    for study_id in interrupted:
        assert by_id[study_id]["attempts"] == 2  # analysed again, not dropped
    assert "requeued 1 study(ies) left in 'analysing'" in server.log.read_text()
