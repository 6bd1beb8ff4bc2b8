"""The clinician page ``/assist``: symptom form and free-text box (JS in static/assist.js)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from dxassist.accounts.permissions import Permission
from dxassist.store.models import User
from dxassist.web.deps import allow
from dxassist.web.pages import TEMPLATES

router = APIRouter(include_in_schema=False)


@router.get("/assist", response_class=HTMLResponse)
def assist_page(request: Request, user: Annotated[User, allow(Permission.ASSIST)]) -> Response:
    return TEMPLATES.TemplateResponse(request, "assist.html", {"user": user})
