"""POST /api/v1/prognosis, GET /api/v1/prognosis/model and the /prognosis page."""

from __future__ import annotations

import re

import pytest

from dxassist.prognosis.runtime import PrognosisModel
from tests.web.conftest import Service

URL = "/api/v1/prognosis"


@pytest.fixture(scope="module")
def prognosis_model() -> PrognosisModel:
    return PrognosisModel.load()


def test_predict_gives_the_cli_result_object(
    service: Service, prognosis_model: PrognosisModel
) -> None:
    labs = {"LDH": 412, "hsCRP": 56, "lymphocyte_pct": 9.5}
    expected = prognosis_model.predict(labs, id="bed 12").to_json()
    # a radiologist with the session cookie, an admin with an API token: any signed-in user
    for client in (service.radiologist, service.admin):
        r = client.post(URL, json={"id": "bed 12", "labs": labs})
        assert r.status_code == 200, r.text
        assert r.json() == expected
    # strings from a form, another spelling, a missing lab, no id
    r = service.radiologist.post(URL, json={"labs": {"ldh": "412", "hsCRP": "56"}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] is None
    assert body == prognosis_model.predict({"LDH": 412, "hsCRP": 56}).to_json()
    assert any(w.startswith("lymphocyte_pct not given") for w in body["warnings"])


#: (body, status, words the detail must contain); one service for all (setup is slow)
BAD = [
    ({"labs": {"LDH": -1}}, 422, "negative"),
    ({"labs": {"LDH": 300, "lymphocyte_pct": 120}}, 422, "cannot exceed 100"),
    ({"labs": {"LDH": 50000}}, 422, "no plausible serum LDH"),
    ({"labs": {"LDH": "high"}}, 422, "not a number"),
    ({"labs": {"ferritin": 900}}, 422, "unknown lab 'ferritin'"),
    ({"labs": {}}, 422, "no lab value given"),
    ({"labs": {"LDH": None}}, 422, "no lab value given"),
    ({"LDH": 300}, 422, "unknown field(s) LDH"),
    ({"labs": [300, 20, 9]}, 422, "labs must be an object"),
    ({"id": {"x": 1}, "labs": {"LDH": 300}}, 422, "id must be a string"),
    ([1, 2], 400, "must be a JSON object"),
]


def test_bad_labs_are_refused_with_a_clear_message(service: Service) -> None:
    for body, status, message in BAD:
        r = service.admin.post(URL, json=body)
        assert r.status_code == status, (body, r.text)
        assert message in r.json()["detail"], (body, r.text)


def test_bad_bodies_and_no_login(service: Service) -> None:
    c = service.admin
    r = c.post(URL, content=b"{LDH: 3", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
    r = c.post(URL, content=b"LDH=300", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.json()["detail"]
    big = b'{"labs": {"LDH": 300}, "id": "' + b"x" * 20000 + b'"}'
    r = c.post(URL, content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    r = service.anonymous.post(URL, json={"labs": {"LDH": 300}})
    assert r.status_code == 401
    # another site's form using the radiologist's cookie is refused
    r = service.radiologist.post(
        URL, json={"labs": {"LDH": 300}}, headers={"Origin": "http://evil.example"}
    )
    assert r.status_code == 403


def test_model_info_and_page(service: Service, prognosis_model: PrognosisModel) -> None:
    info = service.radiologist.get(URL + "/model")
    assert info.status_code == 200
    data = info.json()
    assert [lab["key"] for lab in data["labs"]] == ["LDH", "hsCRP", "lymphocyte_pct"]
    assert data["bands"]["high"] == prognosis_model.bands.high
    page = service.radiologist.get("/prognosis")
    assert page.status_code == 200
    html = page.text
    assert 'id="prognosis-form"' in html
    for key in ("LDH", "hsCRP", "lymphocyte_pct"):
        assert f'name="{key}"' in html
    assert '<a href="/prognosis">' in html  # nav link
    # CSP: scripts only from files, no inline script or style
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert "style=" not in html
    assert service.radiologist.get("/static/prognosis.js").status_code == 200
    redirect = service.anonymous.get("/prognosis", follow_redirects=False)
    assert redirect.status_code == 303 and redirect.headers["location"].startswith("/login")
