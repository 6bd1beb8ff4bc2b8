"""FHIR R4 results: a Bundle with the DiagnosticReport of one AI read, one Observation per
finding (the probability as valueQuantity), the ImagingStudy it is about and the
(pseudonymous) Patient. Built and validated with fhir.resources.

fhir.resources 8 ships FHIR R5 and R4B (4.3.0); R4B is used: the four resources used here
are the same in R4 (4.0.1) and R4B, element for element.

The patient is identified only by dxassist's keyed pseudonym: dxassist keeps no name or
Patient ID, so the receiving system maps the pseudonym (or the StudyInstanceUID, which is
the hospital's own) to its patient.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient

from dxassist.cxr.taxonomy import DISPLAY_NAMES, FINDINGS
from dxassist.interop.codes import FINDING_CODES
from dxassist.privacy.linkstore import Originals
from dxassist.store.models import Review, Study, StudyStatus
from dxassist.timefmt import iso

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
DICOM_DCM = "http://dicom.nema.org/resources/ontology/DCM"
UCUM = "http://unitsofmeasure.org"
PSEUDONYM_SYSTEM = "urn:dxassist:patient-pseudonym"
#: The hospital's DICOM Patient ID, as the modality sent it (identified bundle only).
DICOM_PATIENT_ID_SYSTEM = "urn:dxassist:dicom-patient-id"
DICOM_UID_SYSTEM = "urn:dicom:uid"
#: LOINC 36554-4 "XR Chest Views" (any number of views); the reports are about one film.
CHEST_XR = {"system": LOINC, "code": "36554-4", "display": "XR Chest Views"}

_NS = uuid.UUID("6f1d9c2e-6a43-4d7e-9b1f-2f3f3b6a9e10")


class FhirUnavailableError(ValueError):
    """The study has no AI read yet (or is not a DICOM study), so there is nothing to report."""


def _make(cls: type[Any], **fields: Any) -> Any:
    """A resource built from JSON-like fields and validated by fhir.resources (pydantic):
    a missing required element or a wrong type raises at once."""
    return cls.model_validate(fields)


def _urn(*parts: str) -> str:
    """A stable urn:uuid for a resource of this bundle (the same study gives the same ids)."""
    return f"urn:uuid:{uuid.uuid5(_NS, '/'.join(parts))}"


def _oid(uid: str) -> str:
    return f"urn:oid:{uid}"


def study_bundle(
    study: Study,
    same_study: list[Study],
    review: Review | None = None,
) -> dict[str, Any]:
    """The FHIR Bundle (type ``collection``) for one analysed image, as a JSON-ready dict.

    `same_study` are all instances with the study's StudyInstanceUID (for ImagingStudy's
    series and instances); `review` is the radiologist's newest review, if any: with one
    the report is ``final`` and its conclusion is the radiologist's labels, without one it
    is ``preliminary`` (an AI read nobody has confirmed).
    """
    if study.status != StudyStatus.READY or not study.probabilities:
        raise FhirUnavailableError(
            f"study {study.id} is {study.status}: a FHIR report exists once it is ready"
        )
    status = "final" if review is not None else "preliminary"
    issued = iso(study.updated_at)
    patient_ref = _urn("patient", study.patient_key or study.id)
    imaging_ref = _urn("imagingstudy", study.study_instance_uid or study.id)
    report_ref = _urn("report", study.id)

    patient = _make(
        Patient,
        identifier=[
            {
                "system": PSEUDONYM_SYSTEM,
                "value": f"P-{study.patient_key[:8]}" if study.patient_key else "unknown",
            }
        ],
        gender={"M": "male", "F": "female", "O": "other"}.get(study.patient_sex or "", "unknown"),
    )

    series: dict[str, dict[str, Any]] = {}
    seen_instances: set[str] = set()
    for image in same_study or [study]:
        key = image.series_instance_uid or f"series-of-{image.id}"
        entry = series.setdefault(
            key,
            {
                "uid": image.series_instance_uid or "2.25." + str(uuid.UUID(image.id).int),
                "modality": {"system": DICOM_DCM, "code": image.modality or "OT"},
                "instance": [],
            },
        )
        if image.sop_instance_uid and image.sop_instance_uid not in seen_instances:
            seen_instances.add(image.sop_instance_uid)
            entry["instance"].append(
                {
                    "uid": image.sop_instance_uid,
                    # the SOP class is not kept per row; CR/DX storage by modality
                    "sopClass": {
                        "system": "urn:ietf:rfc:3986",
                        "code": _oid(_SOP_BY_MODALITY.get(image.modality or "", _SC_STORAGE)),
                    },
                }
            )
    for entry in series.values():
        entry["numberOfInstances"] = len(entry["instance"])
        if not entry["instance"]:
            del entry["instance"]
    imaging = _make(
        ImagingStudy,
        status="available",
        subject={"reference": patient_ref},
        identifier=[{"system": DICOM_UID_SYSTEM, "value": _oid(study.study_instance_uid)}]
        if study.study_instance_uid
        else None,
        modality=sorted(
            ({"system": DICOM_DCM, "code": s["modality"]["code"]} for s in series.values()),
            key=lambda c: c["code"],
        )[:1],
        numberOfSeries=len(series),
        numberOfInstances=sum(s["numberOfInstances"] for s in series.values()),
        series=list(series.values()),
    )

    model = f"{study.model_name} {study.model_version}"
    observations: list[tuple[str, Observation]] = []
    for finding in FINDINGS:
        code = FINDING_CODES[finding]
        observations.append(
            (
                _urn("observation", study.id, finding),
                _make(
                    Observation,
                    status=status,
                    category=[
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "imaging",
                                }
                            ]
                        }
                    ],
                    code={
                        "coding": [
                            {"system": SNOMED, "code": code.code, "display": code.snomed_term}
                        ],
                        "text": DISPLAY_NAMES[finding],
                    },
                    subject={"reference": patient_ref},
                    issued=issued,
                    valueQuantity={
                        "value": round(float(study.probabilities[finding]), 6),
                        "unit": "probability",
                        "system": UCUM,
                        "code": "1",
                    },
                    method={"text": f"AI model {model} (dxassist); not a diagnosis"},
                    derivedFrom=[{"reference": imaging_ref}],
                ),
            )
        )

    top = study.top_finding or ""
    if review is not None:
        conclusion = "Radiologist's read: " + ", ".join(review.labels)
        if review.note:
            conclusion += f". {review.note}"
    else:
        conclusion = (
            f"AI read ({model}), not confirmed by a radiologist: most probable finding "
            f"{DISPLAY_NAMES.get(top, top)} ({study.probabilities.get(top, 0.0):.1%}); "
            f"worklist priority {study.priority}."
        )
    warnings = [str(w) for w in (study.warnings or [])]
    if warnings:
        conclusion += " Warnings: " + " ".join(warnings)
    report = _make(
        DiagnosticReport,
        status=status,
        category=[
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}
        ],
        code={"coding": [CHEST_XR], "text": "AI second opinion on a chest radiograph"},
        subject={"reference": patient_ref},
        issued=issued,
        imagingStudy=[{"reference": imaging_ref}],
        result=[{"reference": ref} for ref, _ in observations],
        conclusion=conclusion,
        conclusionCode=[
            {
                "coding": [
                    {
                        "system": SNOMED,
                        "code": FINDING_CODES[top].code,
                        "display": FINDING_CODES[top].snomed_term,
                    }
                ]
            }
        ]
        if top in FINDING_CODES and review is None
        else None,
    )

    entries: list[dict[str, Any]] = [
        {"fullUrl": report_ref, "resource": report},
        *({"fullUrl": ref, "resource": obs} for ref, obs in observations),
        {"fullUrl": imaging_ref, "resource": imaging},
        {"fullUrl": patient_ref, "resource": patient},
    ]
    bundle = _make(Bundle, type="collection", timestamp=issued, entry=entries)
    result: dict[str, Any] = bundle.model_dump(mode="json", exclude_none=True)
    return result


_SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
_SOP_BY_MODALITY = {
    "CR": "1.2.840.10008.5.1.4.1.1.1",
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",
}


def reidentified(bundle: dict[str, Any], originals: Originals | None) -> dict[str, Any]:
    """A copy of `bundle` under the hospital's own identifiers, from the link store: the
    original StudyInstanceUID, series and instance UIDs in the ImagingStudy, and the
    Patient's DICOM Patient ID and name. For the EHR interface only (the integration
    path); the web views keep the pseudonymous bundle. Unchanged if no originals."""
    if originals is None:
        return bundle
    out: dict[str, Any] = json.loads(json.dumps(bundle))
    uids = originals.uids
    for entry in out.get("entry", []):
        resource = entry.get("resource", {})
        kind = resource.get("resourceType")
        if kind == "ImagingStudy":
            if originals.study_instance_uid:
                resource["identifier"] = [
                    {"system": DICOM_UID_SYSTEM, "value": _oid(originals.study_instance_uid)}
                ]
            for series in resource.get("series", []):
                series["uid"] = uids.get(series.get("uid", ""), series.get("uid"))
                for instance in series.get("instance", []):
                    instance["uid"] = uids.get(instance.get("uid", ""), instance.get("uid"))
        elif kind == "Patient":
            if originals.patient_id:
                resource["identifier"] = [
                    *resource.get("identifier", []),
                    {"system": DICOM_PATIENT_ID_SYSTEM, "value": originals.patient_id},
                ]
            if originals.patient_name:
                family, _, given = originals.patient_name.split("=")[0].partition("^")
                name: dict[str, Any] = {"text": originals.patient_name.replace("^", " ").strip()}
                if family:
                    name["family"] = family
                if given:
                    name["given"] = [g for g in given.split("^") if g]
                resource["name"] = [name]
    Bundle.model_validate(out)  # still valid FHIR
    return out
