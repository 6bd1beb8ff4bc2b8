"""POST /api/v1/assist and the /assist page, through the Service fixture (a live app with
a radiologist on a session cookie, an admin on an API token, and an anonymous client)."""

from __future__ import annotations

import re

from tests.web.conftest import Service


def test_differential_from_symptoms_and_text(service: Service) -> None:
    r = service.admin.post(
        "/api/v1/assist",
        json={
            "dataset": "mz10",
            "symptoms": {"咳嗽": "yes"},
            "text": "发烧两天，没有腹泻",
            "age": 3,
            "sex": "F",
        },
    )
    assert r.status_code == 200, r.text
    op = r.json()
    probs = [d["probability"] for d in op["differential"]]
    assert probs == sorted(probs, reverse=True) and len(probs) == 5
    assert op["symptoms_used"] == {"发热": "yes", "腹泻": "no", "咳嗽": "yes"}
    assert [(m["text"], m["value"]) for m in op["mappings"]] == [("发烧", "yes"), ("腹泻", "no")]
    assert op["next_questions"][0]["information_gain"] > 0
    assert any("age and sex" in n for n in op["notes"])
    top = op["differential"][0]
    assert top["evidence_for"] or top["evidence_against"]


def test_answered_questions_change_the_opinion(service: Service) -> None:
    first = service.radiologist.post(
        "/api/v1/assist", json={"dataset": "dxy", "symptoms": {"咳嗽": "yes"}}
    ).json()
    q = first["next_questions"][0]["symptom"]
    second = service.radiologist.post(
        "/api/v1/assist",
        json={"dataset": "dxy", "symptoms": {"咳嗽": "yes"}, "answered": {q: "yes"}},
    ).json()
    assert second["symptoms_used"][q] == "yes"
    assert q not in [x["symptom"] for x in second["next_questions"]]
    assert second["differential"] != first["differential"]


def test_ddxplus_red_flags(service: Service) -> None:
    r = service.admin.post(
        "/api/v1/assist",
        json={"dataset": "ddxplus", "text": "shortness of breath, chest pain at rest, sweating"},
    )
    assert r.status_code == 200
    assert r.json()["red_flags"]


BAD_REQUESTS = [
    ({"dataset": "mz11"}, "unknown dataset"),
    ({"dataset": "mz10", "symptoms": {"咳嗽": "perhaps"}}, "must be yes, no or unsure"),
    ({"dataset": "mz10", "symptoms": {"coughh": "yes"}}, "not in the mz10 vocabulary"),
    ({"dataset": "mz10", "text": "x" * 5001}, "text"),
    ({"dataset": "mz10", "colour": "red"}, "unknown field"),
    ({"dataset": "mz10", "sex": "X"}, "sex"),
    ({"dataset": None, "symptoms": {"咳嗽": "yes"}}, "not in the ddxplus vocabulary"),
]


def test_bad_requests_are_422_json(service: Service) -> None:
    for body, fragment in BAD_REQUESTS:
        r = service.admin.post("/api/v1/assist", json=body)
        assert r.status_code == 422, (body, r.text)
        assert fragment in r.json()["detail"], (body, r.text)


def test_needs_a_signed_in_user(service: Service) -> None:
    r = service.anonymous.post("/api/v1/assist", json={"dataset": "mz10"})
    assert r.status_code == 401
    assert service.anonymous.get("/assist", follow_redirects=False).status_code == 303


def test_vocabulary_endpoints(service: Service) -> None:
    names = [d["dataset"] for d in service.admin.get("/api/v1/assist/datasets").json()["datasets"]]
    assert {"mz10", "dxy", "mz4", "gmd12", "ddxplus"} <= set(names)
    vocab = service.admin.get("/api/v1/assist/datasets/gmd12/symptoms").json()["symptoms"]
    assert {
        "code": "咳嗽",
        "name": "咳嗽 (cough)",
        "question": "Does the patient have 咳嗽 (cough)?",
        "asked": True,
    } in vocab
    mz10 = service.admin.get("/api/v1/assist/datasets/mz10/symptoms").json()["symptoms"]
    bronchitis = next(s for s in mz10 if s["code"] == "支气管炎")
    assert bronchitis["asked"] is False and "diagnosis" in bronchitis["not_asked"]
    assert service.admin.get("/api/v1/assist/datasets/nope/symptoms").status_code == 422


def test_page_has_form_and_no_inline_script(service: Service) -> None:
    r = service.radiologist.get("/assist")
    assert r.status_code == 200
    html = r.text
    assert 'id="assist-text"' in html and 'id="assist-symptom"' in html
    assert '<script src="/static/assist.js"></script>' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)  # no inline script
    assert " style=" not in html
    assert 'href="/assist"' in html  # the nav link
    assert service.radiologist.get("/static/assist.js").status_code == 200


def test_default_dataset_and_populations(service: Service) -> None:
    r = service.admin.post("/api/v1/assist", json={"text": "sore throat and fever, no cough"})
    assert r.status_code == 200, r.text
    op = r.json()
    assert op["dataset"] == "ddxplus"
    assert op["notes"][0].startswith("no dataset named: used ddxplus")
    assert any("equally common" in n for n in op["notes"])
    assert any("too little information to rank these" in n for n in op["notes"])
    assert op["information"]["weak"] is True
    zh = service.admin.post("/api/v1/assist", json={"text": "发烧三天，咳嗽"}).json()
    assert zh["dataset"] == "gmd12"
    rows = service.admin.get("/api/v1/assist/datasets").json()["datasets"]
    assert rows[0]["dataset"] == "ddxplus" and rows[0]["default"] is True
    pop = {d["dataset"]: d["population"] for d in rows}
    assert pop["mz4"] == "paediatric" and "adults" in pop["gmd12"]
