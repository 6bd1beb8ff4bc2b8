"""Web fixtures: the app on a real database (SQLite and PostgreSQL), users, clients.

The analysis worker is not started: tests call ``drain()`` to run it, so every state a
study passes through can be looked at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from dxassist.accounts import create_token, create_user
from dxassist.config import Settings
from dxassist.cxr.runtime import CxrModel
from dxassist.jobs import Worker
from dxassist.store.db import dispose_factory_for
from dxassist.web import create_app

PASSWORD = "correct horse battery"
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def form_token(client: TestClient, page: str = "/login") -> str:
    """The CSRF token of the form on `page`, as a browser would send it (GET /login also
    sets the login form's pre-session cookie)."""
    found = _CSRF_FIELD.search(client.get(page).text)
    assert found, f"no CSRF field on {page}"
    return found.group(1)


def login_fields(client: TestClient, **fields: str) -> dict[str, str]:
    """The login form's fields: `fields` plus the form's CSRF token."""
    return {**fields, "csrf_token": form_token(client)}


@dataclass
class Service:
    app: FastAPI
    settings: Settings
    sessions: sessionmaker[Session]
    worker: Worker
    radiologist: TestClient  # logged in through the form (session cookie)
    admin: TestClient  # API token
    anonymous: TestClient

    def drain(self) -> int:
        return self.worker.drain()


@pytest.fixture
def service(settings: Settings, model: CxrModel) -> Iterator[Service]:
    app = create_app(settings, model, start_worker=False)
    state = app.state.dx
    with state.sessions() as session:
        create_user(session, "rad1", PASSWORD, "radiologist")
        admin = create_user(session, "boss", PASSWORD, "admin")
        token = create_token(session, admin, "tests")
    rad = TestClient(app, base_url="http://testserver")
    page = rad.post(
        "/login",
        data=login_fields(rad, username="rad1", password=PASSWORD),
        follow_redirects=False,
    )
    assert page.status_code == 303, page.text
    admin_client = TestClient(
        app, base_url="http://testserver", headers={"Authorization": f"Bearer {token}"}
    )
    anonymous = TestClient(app, base_url="http://testserver")
    try:
        yield Service(
            app=app,
            settings=settings,
            sessions=state.sessions,
            worker=state.worker,
            radiologist=rad,
            admin=admin_client,
            anonymous=anonymous,
        )
    finally:
        for client in (rad, admin_client, anonymous):
            client.close()
        dispose_factory_for(settings.database_url)
