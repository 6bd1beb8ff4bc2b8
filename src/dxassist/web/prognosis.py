"""COVID-19 outcome risk in the web app: ``POST /api/v1/prognosis`` and the ``/prognosis`` page.

Any signed-in user (session cookie or API token) may use both: clinician tools are not
limited to radiologists (a clinician role comes with a later issue).

Request body::

    {"id": "bed 12", "labs": {"LDH": 412, "hsCRP": 56, "lymphocyte_pct": 9.5}}

``id`` is optional and echoed back; a lab left out or null is not given (a warning says
so). The answer is the object ``dxassist prognosis predict --json`` prints:
``{"id", "risk", "band", "reasons", "warnings"}``. Errors: 400 body not JSON or not an
object, 413 body too large, 415 not JSON, 422 unknown field or impossible lab value,
503 model not installed; each with a ``detail`` that says what to fix.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from dxassist.accounts.permissions import Permission
from dxassist.errors import InputError, ModelError
from dxassist.prognosis.features import LABS
from dxassist.prognosis.runtime import PrognosisModel
from dxassist.store.models import User
from dxassist.web.deps import allow
from dxassist.web.pages import TEMPLATES

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["prognosis"])
SignedIn = Annotated[User, allow(Permission.PROGNOSIS)]

#: largest request body, in bytes (a few labs need well under 1 kB)
MAX_BODY = 16 * 1024
EXAMPLE = '{"id": "bed 12", "labs": {"LDH": 412, "hsCRP": 56, "lymphocyte_pct": 9.5}}'


@lru_cache(maxsize=1)
def _model() -> PrognosisModel:
    return PrognosisModel.load()


def _loaded() -> PrognosisModel:
    try:
        return _model()
    except ModelError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"the outcome-risk model is not available ({exc}); tell the administrator",
        ) from None


async def _json_body(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"send the labs as JSON (Content-Type: application/json), e.g. {EXAMPLE}",
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"the body is over {MAX_BODY // 1024} kB; send one patient's labs",
        )
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE,
                detail=f"the body is over {MAX_BODY // 1024} kB; send one patient's labs",
            )
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail=f"the body is not valid JSON ({exc}); send e.g. {EXAMPLE}",
        ) from None
    if not isinstance(body, dict):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail=f"the body must be a JSON object, e.g. {EXAMPLE}",
        )
    return body


def _unprocessable(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail)


@api.post("/prognosis")
async def predict(request: Request, user: SignedIn) -> dict[str, Any]:
    """Risk of in-hospital death from admission labs: risk, band, reasons, warnings."""
    body = await _json_body(request)
    extra = sorted(set(body) - {"id", "labs"})
    if extra:
        raise _unprocessable(f"unknown field(s) {', '.join(extra)}; send only id and labs")
    ident = body.get("id")
    if ident is not None and not isinstance(ident, str | int):
        raise _unprocessable("id must be a string or a number (it is echoed back)")
    if ident is not None and len(str(ident)) > 200:
        raise _unprocessable("id is longer than 200 characters")
    labs = body.get("labs")
    if not isinstance(labs, dict):
        raise _unprocessable(f"labs must be an object of lab name to value, e.g. {EXAMPLE}")
    model = _loaded()
    try:
        result = model.predict(labs, id=None if ident is None else str(ident))
    except InputError as exc:
        raise _unprocessable(str(exc)) from None
    return result.to_json()


@api.get("/prognosis/model")
def model_info(user: SignedIn) -> dict[str, Any]:
    """What the model uses and how to read its answer (the page builds its form from this)."""
    model = _loaded()
    specs = {s.key: s for s in LABS}
    return {
        "name": model.name,
        "version": model.version,
        "kind": model.kind,
        "admission_window": model.meta.get("admission_window", ""),
        "labs": [
            {
                "key": t.key,
                "name": specs[t.key].name,
                "unit": specs[t.key].unit,
                "refused_below": specs[t.key].lowest,
                "refused_above": specs[t.key].highest,
                "training_range": [t.low, t.high],
            }
            for t in model.transforms
        ],
        "bands": {
            "intermediate": model.bands.intermediate,
            "high": model.bands.high,
            "threshold": model.bands.threshold,
        },
    }


@router.get("/prognosis", response_class=HTMLResponse, include_in_schema=False)
def prognosis_page(request: Request, user: SignedIn) -> Response:
    return TEMPLATES.TemplateResponse(request, "prognosis.html", {"user": user})


router.include_router(api)
