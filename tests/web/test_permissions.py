"""Every route declares its permission, every role gets exactly what the matrix says on
every route, and docs/permissions.md is the matrix as the code has it."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from dxassist.accounts import create_token, create_user
from dxassist.accounts.permissions import Permission, allowed, is_public
from dxassist.store.models import Role
from dxassist.web.routes import permissions_markdown, route_permissions
from tests.web.conftest import PASSWORD, Service, login_fields
from tests.web.test_api import upload

REPO = Path(__file__).resolve().parents[2]


def test_every_route_declares_a_permission_or_is_public(service: Service) -> None:
    routes = route_permissions(service.app)
    assert len(routes) > 20  # the walk really reaches the included routers
    missing = [f"{m} {p}" for m, p, needed in routes if needed is None and not is_public(p)]
    assert missing == [], f"routes without a permission (use deps.allow(...)): {missing}"
    # nothing public that carries patient data
    public = {p for _, p, needed in routes if needed is None}
    assert public <= {"/login", "/logout", "/healthz", "/readyz"}


def test_docs_permissions_md_is_up_to_date(service: Service) -> None:
    doc = (REPO / "docs" / "permissions.md").read_text()
    assert doc == permissions_markdown(service.app), (
        "docs/permissions.md is out of date: python -m dxassist.web.routes > docs/permissions.md"
    )


def test_each_role_gets_exactly_its_permissions_on_every_route(
    service: Service, rg1_uncr: Path
) -> None:
    (study,) = upload(service, rg1_uncr)
    service.drain()
    clients: dict[Role, TestClient] = {}
    with service.sessions() as session:
        for role in Role:
            user = create_user(session, f"u-{role.value}", PASSWORD, role.value)
            token = create_token(session, user, "matrix")
            clients[role] = TestClient(service.app, headers={"Authorization": f"Bearer {token}"})
    values = {"study_id": study["id"], "dataset": "mz10"}
    checked = 0
    for methods, path, needed in route_permissions(service.app):
        if needed is None:
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
        for method in methods.split(","):
            for role, client in clients.items():
                response = client.request(method, url, json={} if method == "POST" else None)
                ok = allowed(role, needed)
                if ok:
                    assert response.status_code not in (401, 403), (
                        method,
                        path,
                        role,
                        response.text,
                    )
                else:
                    assert response.status_code == 403, (method, path, role, response.status_code)
                    # the API says so in JSON, a page in HTML: both name what is missing
                    assert needed.value in response.text
                checked += 1
    assert checked >= 20 * len(Role)
    for client in clients.values():
        client.close()


def test_a_clinician_lands_on_a_page_the_role_may_use(service: Service) -> None:
    with service.sessions() as session:
        create_user(session, "dr-li", PASSWORD, "clinician")
        create_user(session, "res", PASSWORD, "researcher")
    for name, home in (("dr-li", "/"), ("res", "/assist")):
        client = TestClient(service.app, base_url="http://testserver")
        client.post("/login", data=login_fields(client, username=name, password=PASSWORD))
        page = client.get("/")
        assert page.status_code == 200 and page.url.path == (home if name == "res" else "/")
        if name == "res":
            forbidden = client.get("/upload")
            assert forbidden.status_code == 403
            assert "Not allowed for your role" in forbidden.text
            assert "studies:upload" in forbidden.text
            assert 'href="/upload"' not in page.text  # no nav link to what the role lacks
        client.close()
    assert allowed(Role.CLINICIAN, Permission.STUDIES_READ)
    assert not allowed(Role.RESEARCHER, Permission.STUDIES_READ)


def test_the_viewer_offers_the_review_only_to_roles_that_may_review(
    service: Service, nih_png: Path
) -> None:
    (study,) = upload(service, nih_png)
    with service.sessions() as session:
        create_user(session, "dr-wu", PASSWORD, "clinician")
    clinician = TestClient(service.app, base_url="http://testserver")
    clinician.post("/login", data=login_fields(clinician, username="dr-wu", password=PASSWORD))
    page = clinician.get(f"/studies/{study['id']}")
    assert page.status_code == 200 and 'data-can-review="no"' in page.text
    mine = service.radiologist.get(f"/studies/{study['id']}")
    assert 'data-can-review="yes"' in mine.text
    # and the API agrees with the page
    r = clinician.post(f"{study['url']}/review", json={"labels": ["normal"]})
    assert r.status_code == 403
    clinician.close()
