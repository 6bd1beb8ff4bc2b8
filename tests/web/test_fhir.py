"""FHIR R4 results over the API: a Bundle that fhir.resources accepts, with the AI's
probabilities as Observations, preliminary until a radiologist's review makes it final."""

from __future__ import annotations

from pathlib import Path

import pydicom
from fhir.resources.R4B.bundle import Bundle

from dxassist.cxr.taxonomy import FINDINGS
from dxassist.interop.codes import FINDING_CODES
from dxassist.privacy import load_or_create_site_secret
from dxassist.privacy.deid import pseudo_uid
from tests.web.conftest import Service
from tests.web.test_api import upload


def test_fhir_bundle_of_a_read_then_of_its_review(service: Service, rg1_uncr: Path) -> None:
    (study,) = upload(service, rg1_uncr)
    url = f"{study['url']}/fhir"
    early = service.radiologist.get(url)
    assert early.status_code == 409 and "ready" in early.json()["detail"]

    service.drain()
    response = service.radiologist.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()
    Bundle.model_validate(bundle)  # the whole bundle parses as FHIR (R4B)
    by_type: dict[str, list[dict]] = {}
    for entry in bundle["entry"]:
        by_type.setdefault(entry["resource"]["resourceType"], []).append(entry)
    assert sorted(by_type) == ["DiagnosticReport", "ImagingStudy", "Observation", "Patient"]
    (report,) = by_type["DiagnosticReport"]
    assert report["resource"]["status"] == "preliminary"
    assert "not confirmed by a radiologist" in report["resource"]["conclusion"]

    detail = service.radiologist.get(study["url"]).json()
    probs = detail["ai"]["probabilities"]
    observations = {e["resource"]["code"]["coding"][0]["code"]: e for e in by_type["Observation"]}
    assert set(observations) == {FINDING_CODES[f].code for f in FINDINGS}
    for finding in FINDINGS:
        obs = observations[FINDING_CODES[finding].code]["resource"]
        assert obs["valueQuantity"]["value"] == round(probs[finding], 6)
        assert obs["valueQuantity"]["code"] == "1"
    # the report points at every observation and at the imaging study
    assert {r["reference"] for r in report["resource"]["result"]} == {
        e["fullUrl"] for e in by_type["Observation"]
    }
    (imaging,) = by_type["ImagingStudy"]
    assert report["resource"]["imagingStudy"][0]["reference"] == imaging["fullUrl"]
    # the web API knows the study by its pseudonymous UIDs only (the originals are in the
    # encrypted link store, for the integration path)
    source = pydicom.dcmread(rg1_uncr, stop_before_pixels=True)
    secret = load_or_create_site_secret(service.settings.data_dir)
    study_uid = pseudo_uid(str(source.StudyInstanceUID), secret)
    assert imaging["resource"]["identifier"][0]["value"] == f"urn:oid:{study_uid}"
    (series,) = imaging["resource"]["series"]
    assert series["uid"] == pseudo_uid(str(source.SeriesInstanceUID), secret)
    assert series["instance"][0]["uid"] == pseudo_uid(str(source.SOPInstanceUID), secret)
    assert str(source.StudyInstanceUID) not in response.text
    # the patient is the pseudonym only: no name, no Patient ID
    (patient,) = by_type["Patient"]
    text = response.text
    assert str(source.PatientID) not in text and str(source.PatientName) not in text
    assert patient["resource"]["identifier"][0]["value"] == detail["patient"]["pseudonym"]

    top = detail["ai"]["top_finding"]
    review = service.radiologist.post(
        f"{study['url']}/review", json={"labels": [top], "agrees_with_ai": True}
    )
    assert review.status_code == 201, review.text
    final = service.radiologist.get(url).json()
    (report,) = [e for e in final["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"]
    assert report["resource"]["status"] == "final"
    assert report["resource"]["conclusion"].startswith("Radiologist's read: " + top)


def test_fhir_of_an_unknown_study_is_404(service: Service) -> None:
    assert service.radiologist.get("/api/v1/studies/nope/fhir").status_code == 404
    assert service.anonymous.get("/api/v1/studies/nope/fhir").status_code == 401


def test_the_identified_bundle_is_for_the_ehr_interface_only(
    service: Service, rg1_uncr: Path, nih_png: Path
) -> None:
    cr, png = upload(service, rg1_uncr, nih_png)
    service.drain()
    url = f"{cr['url']}/fhir/identified"
    # people's views stay pseudonymous; the EHR gateway's permission is results:identified
    denied = service.radiologist.get(url)
    assert denied.status_code == 403 and "results:identified" in denied.json()["detail"]
    response = service.admin.get(url)
    assert response.status_code == 200, response.text
    bundle = response.json()
    Bundle.model_validate(bundle)
    source = pydicom.dcmread(rg1_uncr, stop_before_pixels=True)
    (imaging,) = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "ImagingStudy"]
    assert imaging["resource"]["identifier"][0]["value"] == f"urn:oid:{source.StudyInstanceUID}"
    (series,) = imaging["resource"]["series"]
    assert series["uid"] == source.SeriesInstanceUID
    assert series["instance"][0]["uid"] == source.SOPInstanceUID
    (patient,) = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    ids = {i["system"]: i["value"] for i in patient["resource"]["identifier"]}
    assert ids["urn:dxassist:dicom-patient-id"] == str(source.PatientID)
    assert patient["resource"]["name"][0]["family"] == str(source.PatientName).split("^")[0]
    # the probabilities are those of the pseudonymous bundle
    plain = service.admin.get(f"{cr['url']}/fhir").json()
    values = [
        [
            e["resource"]["valueQuantity"]["value"]
            for e in b["entry"]
            if "valueQuantity" in e["resource"]
        ]
        for b in (plain, bundle)
    ]
    assert values[0] == values[1]
    # a PNG has no original identifiers
    assert service.admin.get(f"{png['url']}/fhir/identified").status_code == 404
