"""The JSON API under /api/v1: ingest, worklist, study, images, review, training export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncGenerator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from starlette.datastructures import UploadFile as StarletteUploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from dxassist.accounts.permissions import Permission, allowed
from dxassist.audit.trail import Action
from dxassist.cxr.taxonomy import FINDINGS, PNEUMONIA_UNTYPED, REVIEW_LABELS
from dxassist.errors import DxAssistError
from dxassist.ingest import ReceiveError, receive_files
from dxassist.interop.fhir import FhirUnavailableError, study_bundle
from dxassist.interop.fhir import reidentified as fhir_reidentified
from dxassist.jobs.tasks import ensure_preview, heatmap_layer_relpath, heatmap_relpath
from dxassist.privacy.linkstore import LinkStore
from dxassist.store import repository
from dxassist.store.models import Study, StudyStatus, User
from dxassist.training_export import EXPORT_COLUMNS, export_rows
from dxassist.web.audit import record, record_worklist
from dxassist.web.deps import (
    DB,
    Exporter,
    Integrator,
    Reader,
    Releaser,
    Resender,
    Reviewer,
    Self,
    State,
    Uploader,
    effective_permissions,
)
from dxassist.web.views import detail, review_view, summary

router = APIRouter(prefix="/api/v1", tags=["studies"])

#: Most studies one worklist page returns.
MAX_PAGE = 500
#: Largest worklist offset (far beyond any real worklist; keeps SQL integers in range).
MAX_OFFSET = 1_000_000_000
#: Longest review note, in characters.
MAX_NOTE = 4000


def _study_or_404(session: DB, study_id: str) -> Study:
    study = repository.get(session, study_id) if _plausible_id(study_id) else None
    if study is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no study with id {study_id!r}")
    return study


def _plausible_id(study_id: str) -> bool:
    """Study ids are UUIDs; anything else (NUL bytes, megabytes) never reaches the database."""
    return len(study_id) <= 64 and "\x00" not in study_id


def _review_json(session: DB, study: Study) -> dict[str, Any] | None:
    review = repository.latest_review(session, study.id)
    if review is None:
        return None
    return review_view(review, session.get(User, review.reviewer_id))


#: Most files one upload request may carry.
MAX_FILES_PER_REQUEST = 100


class _BodyTooLarge(Exception):
    pass


async def _limited(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    """The request body, stopping (with _BodyTooLarge) as soon as it passes `limit` bytes."""
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise _BodyTooLarge
        yield chunk


async def _parse_upload(request: Request, limit_mb: float) -> list[tuple[bytes, str]]:
    """The ``files`` parts of a multipart upload, read under the size and count limits."""
    limit = int(limit_mb * 1024 * 1024)
    too_large = HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        detail=f"the upload is over the {limit_mb:g} MB limit per request; nothing was stored. "
        "Send fewer files per request (or raise DXASSIST_MAX_UPLOAD_MB if this is one real "
        "radiograph)",
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large  # refused before a byte of the body is read
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail="send the radiographs as multipart/form-data, one 'files' part per file "
            "(e.g. curl -F files=@chest.dcm ...)",
        )
    parser = MultiPartParser(
        request.headers,
        _limited(request, limit),
        max_files=MAX_FILES_PER_REQUEST,
        max_fields=MAX_FILES_PER_REQUEST,
    )
    try:
        form = await parser.parse()
    except _BodyTooLarge:
        raise too_large from None
    except MultiPartException as exc:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail=f"the multipart body cannot be read ({exc.message}); send at most "
            f"{MAX_FILES_PER_REQUEST} files as 'files' parts of a multipart/form-data request",
        ) from None
    try:
        parts = form.getlist("files")
        if not parts:
            others = sorted(set(form.keys()))
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail="no 'files' part in the upload"
                + (f" (found {', '.join(map(repr, others))})" if others else "")
                + "; send each radiograph as a part named 'files' with a file name",
            )
        items: list[tuple[bytes, str]] = []
        for i, part in enumerate(parts, start=1):
            if not isinstance(part, StarletteUploadFile):
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT,
                    detail=f"'files' part {i} is not a file (no file name); send each "
                    "radiograph as a file part, e.g. curl -F files=@chest.dcm",
                )
            items.append((await part.read(), part.filename or f"upload-{i}"))
        return items
    finally:
        await form.close()


@router.get("/me")
def me(request: Request, user: Self) -> dict[str, Any]:
    """Who you are signed in as, and what you may do (your role's permissions, cut to
    the API token's scopes when the token has any)."""
    return {
        "username": user.username,
        "role": user.role.value,
        "permissions": sorted(p.value for p in effective_permissions(request, user)),
    }


@router.post(
    "/studies",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["files"],
                        "properties": {
                            "files": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "description": "DICOM, PNG or JPEG radiographs",
                            }
                        },
                    }
                }
            },
        }
    },
)
async def upload_studies(request: Request, state: State, user: Uploader) -> dict[str, Any]:
    """Receive one or many radiographs (multipart field ``files``, at most 100 per request,
    DXASSIST_MAX_UPLOAD_MB in all). Who is asking is checked before the body is read.
    Every file is checked before any is stored: if one cannot be read the whole upload is
    refused (422, each bad file named) and nothing is kept. Files are durable on disk and
    in the database before this answers. Bytes that were received before are not stored
    twice (``duplicate: true``, the earlier study)."""
    items = await _parse_upload(request, state.settings.max_upload_mb)

    def receive() -> list[Any]:
        with state.sessions() as session:
            received = receive_files(state.settings, session, items)
            for r in received:
                record(
                    request,
                    session,
                    user,
                    Action.STUDY_UPLOAD,
                    r.study.id,
                    {"duplicate": r.duplicate, "status": str(r.study.status)},
                )
            return [
                {
                    "id": r.study.id,
                    "original_filename": r.study.original_filename,
                    "status": str(r.study.status),
                    "duplicate": r.duplicate,
                    "url": f"/api/v1/studies/{r.study.id}",
                }
                for r in received
            ]

    try:
        studies = await run_in_threadpool(receive)
    except ReceiveError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail={
                "message": str(exc),
                "files": [{"file": name, "error": reason} for name, reason in exc.problems],
            },
        ) from None
    state.worker.wake()
    return {"studies": studies}


def _parse_when(value: str | None, name: str, end: bool) -> datetime | None:
    """A date (YYYY-MM-DD; as the end of a range it includes that whole day) or an ISO
    date-time; naive values are UTC. None for no bound."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if end:
                if day == date.max:
                    return None  # the end of time: no upper bound
                day = date.fromordinal(day.toordinal() + 1)
            when = datetime.combine(day, time.min)
        else:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"{name}={value!r} is not a date (YYYY-MM-DD) or ISO 8601 date-time",
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _split_values(values: list[str] | None, allowed: tuple[str, ...], name: str) -> tuple[str, ...]:
    out: list[str] = []
    for value in values or []:
        for part in value.split(","):
            part = part.strip().lower()
            if not part:
                continue
            if part not in allowed:
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT,
                    detail=f"{name}={part!r} is not one of: {', '.join(allowed)}",
                )
            out.append(part)
    return tuple(out)


@router.get("/worklist")
def worklist(
    request: Request,
    session: DB,
    user: Reader,
    status_: Annotated[
        list[str] | None,
        Query(
            alias="status",
            description="received, analysing, ready, failed, skipped (kept, not analysed) "
            "and quarantined (possibly burned-in text, held for an administrator); the last "
            "two are listed only when asked for",
        ),
    ] = None,
    priority: Annotated[list[str] | None, Query(description="urgent, priority, routine")] = None,
    received_from: Annotated[str | None, Query(description="YYYY-MM-DD or ISO date-time")] = None,
    received_to: Annotated[
        str | None, Query(description="YYYY-MM-DD (inclusive) or ISO date-time (exclusive)")
    ] = None,
    reviewed: Annotated[
        bool | None, Query(description="false (default): the open worklist; true: reviewed")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    """Open studies, urgent first, then priority, routine, not yet read by the AI; oldest
    first within each. Reviewed studies leave it (``reviewed=true`` lists them)."""
    statuses = _split_values(status_, tuple(s.value for s in StudyStatus), "status")
    priorities = _split_values(priority, tuple(repository.PRIORITY_RANK), "priority")
    start = _parse_when(received_from, "received_from", end=False)
    stop = _parse_when(received_to, "received_to", end=True)
    if start is not None and stop is not None and stop <= start:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"received_to ({received_to}) is before received_from ({received_from}); "
            "swap them",
        )
    query = repository.WorklistQuery(
        statuses=tuple(StudyStatus(s) for s in statuses),
        priorities=priorities,
        received_from=start,
        received_before=stop,
        reviewed=reviewed,
        limit=limit,
        offset=offset,
    )
    total, studies = repository.worklist(session, query)
    reviews = repository.latest_reviews(session, [s.id for s in studies]) if reviewed else {}
    record_worklist(request, session, user, total, len(studies))
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "items": [summary(s, review=reviews.get(s.id)) for s in studies],
    }


@router.get("/studies/{study_id}")
def get_study(
    request: Request, state: State, session: DB, user: Reader, study_id: str
) -> dict[str, Any]:
    """Metadata, the AI read (once ready; with the triage thresholds and the finding the
    heatmap shows), warnings, image and heatmap URLs and the newest review."""
    study = _study_or_404(session, study_id)
    info = state.model.info
    thresholds = None
    if (study.model_name, study.model_version) == (info.name, info.version):
        thresholds = {"priority": info.thresholds.priority, "urgent": info.thresholds.urgent}
    same_study = _same_study(session, study)
    record(request, session, user, Action.STUDY_VIEW, study.id)
    return detail(
        study,
        _review_json(session, study),
        thresholds,
        same_study=same_study,
        deliveries=repository.deliveries_for(session, study.id),
    )


def _same_study(session: DB, study: Study) -> list[Study]:
    """The images of the study's DICOM study (same StudyInstanceUID and patient)."""
    if not study.study_instance_uid:
        return [study]
    return repository.studies_in_dicom_study(session, study.study_instance_uid, study.patient_key)


def _fhir_bundle(session: DB, study: Study) -> dict[str, Any]:
    """The study's pseudonymous FHIR Bundle; 409 until it is ready."""
    try:
        return study_bundle(
            study, _same_study(session, study), repository.latest_review(session, study.id)
        )
    except FhirUnavailableError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None


@router.get("/studies/{study_id}/fhir")
def study_fhir(request: Request, session: DB, user: Reader, study_id: str) -> Response:
    """The AI read as a FHIR R4 Bundle (collection): a DiagnosticReport (preliminary until
    a radiologist reviews it, then final with the radiologist's labels), one Observation
    per finding with its probability as valueQuantity, the ImagingStudy and the
    pseudonymous Patient. 409 until the study is ready."""
    study = _study_or_404(session, study_id)
    bundle = _fhir_bundle(session, study)
    record(request, session, user, Action.FHIR_VIEW, study.id)
    return Response(json.dumps(bundle), media_type="application/fhir+json")


@router.get("/studies/{study_id}/fhir/identified")
def study_fhir_identified(
    request: Request, state: State, session: DB, user: Integrator, study_id: str
) -> Response:
    """The same Bundle under the hospital's identifiers (original StudyInstanceUID, series
    and instance UIDs, Patient ID and name, from the encrypted link store), for the EHR
    interface. Needs results:identified (admins; give the EHR gateway a token scoped to
    it). 404 when the link store has no originals for the study (e.g. a PNG upload)."""
    study = _study_or_404(session, study_id)
    bundle = _fhir_bundle(session, study)
    originals = (
        LinkStore.open(state.settings.data_dir).original_uids(
            study.study_instance_uid, study.sop_instance_uid
        )
        if study.study_instance_uid
        else None
    )
    if originals is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"study {study_id} has no original identifiers (it was not DICOM, or it "
            "predates the link store): use the pseudonymous /fhir",
        )
    record(request, session, user, Action.FHIR_VIEW, study.id, {"identified": True})
    return Response(
        json.dumps(fhir_reidentified(bundle, originals)), media_type="application/fhir+json"
    )


@router.post("/studies/{study_id}/release", status_code=status.HTTP_202_ACCEPTED)
def release_study(
    request: Request, state: State, session: DB, user: Releaser, study_id: str
) -> dict[str, Any]:
    """Release a quarantined study (possibly burned-in identifying text) for analysis, after
    an administrator has looked at it. 409 if it is not quarantined."""
    _study_or_404(session, study_id)
    try:
        study = repository.release(session, study_id)
    except repository.StudyNotQuarantinedError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    record(request, session, user, Action.STUDY_RELEASE, study_id)
    state.worker.wake()
    return summary(study)


@router.post("/studies/{study_id}/deliveries/retry", status_code=status.HTTP_202_ACCEPTED)
def retry_deliveries(
    request: Request, state: State, session: DB, user: Resender, study_id: str
) -> dict[str, Any]:
    """Send a study's pending results now instead of at the next back-off time (after the
    PACS is back). Needs results:resend (admins)."""
    _study_or_404(session, study_id)
    n = repository.retry_deliveries_now(session, study_id)
    record(request, session, user, Action.RESULTS_RESEND, study_id, {"retried": n})
    if state.sender is not None:
        state.sender.wake()
    return {"retried": n}


def _png(path: Path) -> FileResponse:
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "private"})


@router.get("/studies/{study_id}/image.png", response_class=Response)
def study_image(
    request: Request, state: State, session: DB, user: Reader, study_id: str
) -> FileResponse:
    """The radiograph as an 8-bit PNG (longest side at most 2048 px), display-ready. A
    quarantined study's image (it may show identifying text) only for those who may
    release it."""
    study = _study_or_404(session, study_id)
    if study.status == StudyStatus.QUARANTINED and not allowed(
        user.role, Permission.STUDIES_RELEASE
    ):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="this image is quarantined (it may show burned-in identifying text): only "
            "an administrator (studies:release) can look at it until it is released",
        )
    try:
        path = ensure_preview(state.settings, study)
    except DxAssistError as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"the stored image cannot be shown: {exc}. Ask an administrator to check "
            "the data folder",
        ) from None
    record(request, session, user, Action.IMAGE_VIEW, study.id)
    return _png(path)


def _ready_file(
    request: Request, state: State, session: DB, user: User, study_id: str, rel: Path, what: str
) -> FileResponse:
    study = _study_or_404(session, study_id)
    if study.status != StudyStatus.READY:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"study {study_id} is {study.status}: the {what} exists once it is ready",
        )
    path = state.settings.data_dir / rel
    if not path.is_file():
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"the {what} of study {study_id} is missing; retry the analysis",
        )
    record(request, session, user, Action.HEATMAP_VIEW, study.id, {"file": path.name})
    return _png(path)


@router.get("/studies/{study_id}/heatmap.png", response_class=Response)
def study_heatmap(
    request: Request, state: State, session: DB, user: Reader, study_id: str
) -> FileResponse:
    """The radiograph with the heatmap blended in (as `dxassist read` writes it)."""
    rel = heatmap_relpath(study_id)
    return _ready_file(request, state, session, user, study_id, rel, "heatmap")


@router.get("/studies/{study_id}/heatmap-layer.png", response_class=Response)
def study_heatmap_layer(
    request: Request, state: State, session: DB, user: Reader, study_id: str
) -> FileResponse:
    """The heatmap alone, RGBA, the size of image.png, for overlaying at any opacity."""
    rel = heatmap_layer_relpath(study_id)
    return _ready_file(request, state, session, user, study_id, rel, "heatmap layer")


@router.post("/studies/{study_id}/retry", status_code=status.HTTP_202_ACCEPTED)
def retry_study(
    request: Request, state: State, session: DB, user: Reviewer, study_id: str
) -> dict[str, Any]:
    """Queue a failed study for analysis again."""
    _study_or_404(session, study_id)
    try:
        study = repository.retry(session, study_id)
    except repository.StudyNotRetryableError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    record(request, session, user, Action.RETRY, study_id)
    state.worker.wake()
    return summary(study)


class ReviewIn(BaseModel):
    """A radiologist's read."""

    model_config = ConfigDict(extra="forbid")

    labels: list[str] = Field(
        min_length=1,
        description="final label(s), primary first: " + ", ".join(REVIEW_LABELS),
    )
    agrees_with_ai: StrictBool | None = Field(
        default=None,
        description="whether you agree with the AI's read (required once it has one); agreeing "
        "means your primary label is the AI's top finding",
    )
    note: str = Field(default="", max_length=MAX_NOTE)

    @field_validator("note")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("the note contains a NUL character; remove it")
        return value


def _check_review(body: ReviewIn, study: Study) -> list[str]:
    labels = [label.strip().lower() for label in body.labels]
    unknown = [label for label in labels if label not in REVIEW_LABELS]
    if unknown:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"unknown label(s) {', '.join(map(repr, unknown))}; use: "
            + ", ".join(REVIEW_LABELS),
        )
    if len(set(labels)) != len(labels):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="a label is repeated")
    if "normal" in labels and len(labels) > 1:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="'normal' cannot be combined with a finding; give either normal or findings",
        )
    if PNEUMONIA_UNTYPED in labels and any(lab in FINDINGS[1:] for lab in labels):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="'pneumonia' (type not determined) cannot be combined with a typed pneumonia",
        )
    has_ai = study.status == StudyStatus.READY
    if has_ai and body.agrees_with_ai and labels[0] != study.top_finding:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"you agree with the AI, but your primary label {labels[0]!r} is not the "
            f"AI's top finding {study.top_finding!r}: mark it as disagree, or put "
            f"{study.top_finding!r} first",
        )
    if has_ai and body.agrees_with_ai is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="say whether you agree with the AI's read (agrees_with_ai: true or false)",
        )
    if not has_ai and body.agrees_with_ai is not None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"study is {study.status}: there is no AI read to agree with; leave "
            "agrees_with_ai out",
        )
    return labels


@router.post("/studies/{study_id}/review", status_code=status.HTTP_201_CREATED)
def review_study(
    request: Request, session: DB, user: Reviewer, study_id: str, body: ReviewIn
) -> dict[str, Any]:
    """Store your read (final labels, agree/disagree, note); the study leaves the open
    worklist. Reviewing again corrects it (the newest review counts). Answers with the
    review and the most urgent open study (`next_study_id`)."""
    study = _study_or_404(session, study_id)
    if study.status in (StudyStatus.RECEIVED, StudyStatus.ANALYSING, StudyStatus.QUARANTINED):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"study {study_id} is still {study.status}; review it once it is ready "
            "(a quarantined study once an administrator has released it)",
        )
    labels = _check_review(body, study)
    try:
        review = repository.add_review(
            session,
            study_id,
            reviewer_id=user.id,
            labels=labels,
            agrees_with_ai=body.agrees_with_ai,
            note=body.note.strip(),
        )
    except repository.ReviewNotAllowedError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    record(
        request,
        session,
        user,
        Action.REVIEW,
        study_id,
        {"labels": labels, "agrees_with_ai": body.agrees_with_ai},
    )
    following = repository.first_open(session)
    return {
        "study_id": study_id,
        "review": review_view(review, user),
        "next_study_id": following.id if following is not None else None,
    }


@router.get("/labels.csv", response_class=Response)
def labels_csv(request: Request, state: State, session: DB, user: Exporter) -> Response:
    """Reviewed studies as a training manifest that `dxassist train --manifest` accepts
    (path, dataset, patient_id, label, view, age_group, split, then study details)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    n = 0
    for row in export_rows(state.settings, repository.reviewed_studies(session)):
        writer.writerow(row)
        n += 1
    record(request, session, user, Action.EXPORT_TRAINING, detail={"rows": n})
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="dxassist-labels.csv"'},
    )
