"""Access hardening: login rate limiting, CSRF tokens on the HTML forms, scoped API tokens."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from dxassist.accounts import create_token, create_user, ratelimit
from dxassist.accounts.service import AccountError, find_user
from dxassist.cli import main
from dxassist.cxr.runtime import CxrModel
from dxassist.store.models import LoginFailure, utcnow
from dxassist.web import create_app
from tests.web.conftest import PASSWORD, Service, form_token, login_fields

WRONG = "not the password"


def attempt(client: TestClient, username: str, password: str) -> httpx.Response:
    return client.post(
        "/login",
        data=login_fields(client, username=username, password=password),
        follow_redirects=False,
    )


def fresh(service: Service) -> TestClient:
    return TestClient(service.app, base_url="http://testserver")


# --- rate limiting ---------------------------------------------------------------------


def test_five_failures_lock_the_user_name_even_for_the_right_password(
    service: Service, model: CxrModel
) -> None:
    client = fresh(service)
    for name in ("rad1", "RAD1", "Rad1", " rad1 ", "rAd1"):  # one name, any case
        r = attempt(client, name, WRONG)
        assert r.status_code == 401, r.text
    locked = attempt(client, "rad1", PASSWORD)
    assert locked.status_code == 429
    retry = int(locked.headers["retry-after"])
    assert 14 * 60 < retry <= 15 * 60
    text = locked.text
    assert "Too many failed attempts" in text and "try again in 15 minutes" in text
    assert "administrator" in text and "dxassist_session" not in str(locked.headers)
    # other users on the same machine are not locked out
    with service.sessions() as s:
        create_user(s, "rad2", PASSWORD, "radiologist")
    assert attempt(client, "rad2", PASSWORD).status_code == 303

    # the lock is in the database: a restarted server (or a second worker process) keeps it
    second = create_app(service.settings, model, start_worker=False)
    with TestClient(second, base_url="http://testserver") as other:
        assert attempt(other, "RAD1", PASSWORD).status_code == 429

    # once the failures are older than the window, the right password works again
    with service.sessions() as s:
        s.execute(update(LoginFailure).values(at=utcnow() - timedelta(minutes=16)))
        s.commit()
    assert attempt(client, "rad1", PASSWORD).status_code == 303


def test_a_success_resets_the_count_and_unlock_lifts_a_lock(
    service: Service, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = fresh(service)
    for _ in range(4):
        assert attempt(client, "rad1", WRONG).status_code == 401
    assert attempt(client, "rad1", PASSWORD).status_code == 303
    for _ in range(4):  # four more after the success: still under the limit
        assert attempt(client, "rad1", WRONG).status_code == 401
    assert attempt(client, "rad1", PASSWORD).status_code == 303

    for _ in range(5):
        attempt(client, "rad1", WRONG)
    assert attempt(client, "rad1", PASSWORD).status_code == 429
    monkeypatch.setenv("DXASSIST_DATA_DIR", str(service.settings.data_dir))
    monkeypatch.setenv("DXASSIST_DATABASE_URL", service.settings.database_url)
    assert main(["user", "unlock", "RAD1"]) == 0
    assert "user rad1 unlocked (5 recent failed logins forgotten)" in capsys.readouterr().out
    assert attempt(client, "rad1", PASSWORD).status_code == 303
    assert main(["user", "unlock", "nobody"]) == 2
    assert "no user 'nobody'" in capsys.readouterr().err


def test_twenty_failures_from_one_address_lock_it(service: Service) -> None:
    client = fresh(service)
    for i in range(ratelimit.MAX_PER_CLIENT):
        assert attempt(client, f"guess{i}", WRONG).status_code == 401
    locked = attempt(client, "rad1", PASSWORD)
    assert locked.status_code == 429
    assert "address" in locked.text and int(locked.headers["retry-after"]) > 0
    # failures store no user name in clear
    with service.sessions() as s:
        rows = list(s.query(LoginFailure))
    assert len(rows) == ratelimit.MAX_PER_CLIENT
    assert all(len(r.username_hash) == 64 and "guess" not in r.username_hash for r in rows)


# --- CSRF ------------------------------------------------------------------------------


def test_login_needs_the_forms_csrf_token(service: Service) -> None:
    client = fresh(service)
    fields = {"username": "rad1", "password": PASSWORD}
    missing = client.post("/login", data=fields, follow_redirects=False)
    assert missing.status_code == 403 and "CSRF token" in missing.text
    assert "dxassist_session" not in missing.headers.get("set-cookie", "")
    token = form_token(client)
    wrong = client.post("/login", data={**fields, "csrf_token": token[::-1]})
    assert wrong.status_code == 403 and "Reload the page" in wrong.text
    # another browser's token (an attacker's own login form) does not fit this cookie
    attacker = fresh(service)
    theirs = form_token(attacker)
    assert theirs != token
    assert client.post("/login", data={**fields, "csrf_token": theirs}).status_code == 403
    # a CSRF refusal is not a failed password: it does not count towards the lock
    with service.sessions() as s:
        assert s.query(LoginFailure).count() == 0
    ok = client.post("/login", data={**fields, "csrf_token": token}, follow_redirects=False)
    assert ok.status_code == 303


def test_logout_needs_the_sessions_csrf_token(service: Service) -> None:
    client = service.radiologist
    page = client.get("/")
    assert 'name="csrf_token"' in page.text
    refused = client.post("/logout", data={}, follow_redirects=False)
    assert refused.status_code == 403 and "CSRF token" in refused.text
    wrong = client.post("/logout", data={"csrf_token": "x" * 64}, follow_redirects=False)
    assert wrong.status_code == 403
    assert client.get("/api/v1/me").status_code == 200  # still logged in
    # the token belongs to the session: another login's page gives another one
    other = fresh(service)
    other.post("/login", data=login_fields(other, username="rad1", password=PASSWORD))
    assert form_token(other, "/") != form_token(client, "/")
    done = client.post(
        "/logout", data={"csrf_token": form_token(client, "/")}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == "/login"
    assert client.get("/api/v1/me").status_code == 401
    assert other.get("/api/v1/me").status_code == 200


def test_the_pages_json_api_calls_rely_on_the_origin_check(service: Service) -> None:
    """Documented choice (web/csrf.py): fetch() from the pages sends no token; the
    Origin/Referer check refuses cross-site calls."""
    client = service.radiologist
    ok = client.post("/api/v1/studies/nope/review", json={"labels": ["normal"]})
    assert ok.status_code == 404  # reached the route: no token needed from our own pages
    cross = client.post(
        "/api/v1/studies/nope/review",
        json={"labels": ["normal"]},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403 and "cross-site" in cross.json()["detail"]


# --- scoped API tokens -----------------------------------------------------------------


def test_a_scoped_token_may_do_only_its_scopes_within_its_role(
    service: Service, rg1_uncr: Path
) -> None:
    with service.sessions() as s:
        boss = find_user(s, "boss")
        rad = find_user(s, "rad1")
        assert boss is not None and rad is not None
        reader = create_token(s, boss, "dashboard", ["studies:read", "self"])
        uploader = create_token(s, rad, "modality", ["studies:upload"])
        with pytest.raises(AccountError, match="not a permission of the radiologist role"):
            create_token(s, rad, "x", ["audit:read"])
        with pytest.raises(AccountError, match="unknown scope 'studies:write'"):
            create_token(s, rad, "x", ["studies:write"])
        with pytest.raises(AccountError, match="at least one"):
            create_token(s, rad, "x", [])

    def client(token: str) -> TestClient:
        return TestClient(
            service.app, base_url="http://testserver", headers={"Authorization": f"Bearer {token}"}
        )

    as_reader, as_uploader = client(reader), client(uploader)
    assert as_reader.get("/api/v1/me").json()["permissions"] == ["self", "studies:read"]
    assert as_reader.get("/api/v1/worklist").status_code == 200
    refused = as_reader.post("/api/v1/studies", files=[("files", ("a.dcm", rg1_uncr.read_bytes()))])
    assert refused.status_code == 403
    assert "scopes (self, studies:read)" in refused.json()["detail"]
    assert "--scope studies:upload" in refused.json()["detail"]
    assert as_reader.get("/api/v1/labels.csv").status_code == 403  # admin may; token may not

    up = as_uploader.post("/api/v1/studies", files=[("files", ("a.dcm", rg1_uncr.read_bytes()))])
    assert up.status_code == 202, up.text
    assert as_uploader.get("/api/v1/worklist").status_code == 403
    assert as_uploader.get("/api/v1/me").status_code == 403  # not even "self" unless scoped
    # unscoped tokens keep the role's permissions (as before)
    assert service.admin.get("/api/v1/labels.csv").status_code == 200

    # scopes never widen a role: demote the reader's user and the scope no longer works
    with service.sessions() as s:
        boss = find_user(s, "boss")
        assert boss is not None
        from dxassist.store.models import Role

        boss.role = Role.RESEARCHER
        s.commit()
    assert as_reader.get("/api/v1/worklist").status_code == 403
    assert as_reader.get("/api/v1/me").json()["permissions"] == ["self"]


def test_token_cli_scopes(
    service: Service, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DXASSIST_DATA_DIR", str(service.settings.data_dir))
    monkeypatch.setenv("DXASSIST_DATABASE_URL", service.settings.database_url)
    code = main(["token", "create", "rad1", "--name", "gw", "--scope", "studies:upload"])
    out = capsys.readouterr()
    assert code == 0 and out.out.startswith("dxa_") and "limited to studies:upload" in out.err
    gateway = TestClient(
        service.app,
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {out.out.strip()}"},
    )
    assert gateway.get("/api/v1/worklist").status_code == 403
    assert main(["token", "list"]) == 0
    listed = capsys.readouterr().out
    assert "gw" in listed and "scopes: studies:upload" in listed and "scopes: role" in listed
    assert main(["token", "create", "rad1", "--name", "gw", "--scope", "audit:read"]) == 3
    assert "not a permission of the radiologist role" in capsys.readouterr().err
