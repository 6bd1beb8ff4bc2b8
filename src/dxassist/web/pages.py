"""Server-rendered pages: login, worklist, viewer, upload. Small vanilla JS, no build step.

The pages call the JSON API (same origin, session cookie) for everything they show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from dxassist import __version__
from dxassist.accounts import authenticate, end_session, resolve_session, start_session
from dxassist.accounts.permissions import Permission, allowed
from dxassist.accounts.service import SESSION_HOURS
from dxassist.audit import trail as audit
from dxassist.store import repository
from dxassist.store.models import User
from dxassist.web.audit import client_of, record
from dxassist.web.deps import DB, SESSION_COOKIE, Uploader, allow

router = APIRouter(include_in_schema=False)
TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
TEMPLATES.env.globals["version"] = __version__
TEMPLATES.env.globals["can"] = lambda user, permission: (
    user is not None and allowed(user.role, Permission(permission))
)


def _safe_next(target: str | None) -> str:
    """Only redirect to a path on this site (never to another host after login)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    return TEMPLATES.TemplateResponse(
        request, "login.html", {"next": _safe_next(next), "error": None, "username": ""}
    )


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: DB,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    user = authenticate(session, username.strip(), password) if username.strip() else None
    if user is None:
        # the attempted name (never the password): a guessing attack shows in the trail
        audit.record(
            session, audit.Action.LOGIN_FAILED, actor=username.strip(), client=client_of(request)
        )
        return TEMPLATES.TemplateResponse(
            request,
            "login.html",
            {
                "next": _safe_next(next),
                "error": "Wrong user name or password.",
                "username": username,
            },
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
    record(request, session, user, audit.Action.LOGIN)
    token = start_session(session, user)
    response = RedirectResponse(_safe_next(next), status_code=status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout(request: Request, session: DB) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        plausible = len(token) <= 256 and "\x00" not in token
        user = resolve_session(session, token) if plausible else None
        if user is not None:
            record(request, session, user, audit.Action.LOGOUT)
        end_session(session, token)
    response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


Viewer = Annotated[User, allow(Permission.STUDIES_READ)]

#: Where "/" takes a user whose role has no worklist: the first page the role may use.
HOME_PAGES = ((Permission.PROGNOSIS, "/prognosis"), (Permission.ASSIST, "/assist"))


@router.get("/", response_class=HTMLResponse)
def worklist_page(request: Request, user: Annotated[User, allow(Permission.SELF)]) -> Response:
    if not allowed(user.role, Permission.STUDIES_READ):
        for permission, page in HOME_PAGES:
            if allowed(user.role, permission):
                return RedirectResponse(page, status_code=status.HTTP_303_SEE_OTHER)
    return TEMPLATES.TemplateResponse(request, "worklist.html", {"user": user})


@router.get("/studies/{study_id}", response_class=HTMLResponse)
def viewer_page(request: Request, user: Viewer, session: DB, study_id: str) -> Response:
    if repository.get(session, study_id) is None:
        return TEMPLATES.TemplateResponse(
            request,
            "not_found.html",
            {"user": user, "what": f"No study has the id {study_id!r}."},
            status_code=status.HTTP_404_NOT_FOUND,
        )
    return TEMPLATES.TemplateResponse(request, "viewer.html", {"user": user, "study_id": study_id})


@router.get("/upload", response_class=HTMLResponse)
def upload_page(request: Request, user: Uploader) -> Response:
    return TEMPLATES.TemplateResponse(request, "upload.html", {"user": user})
