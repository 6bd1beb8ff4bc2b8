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
from dxassist.accounts import authenticate, end_session, ratelimit, resolve_session, start_session
from dxassist.accounts.permissions import Permission, allowed
from dxassist.accounts.service import SESSION_HOURS
from dxassist.audit import trail as audit
from dxassist.store import repository
from dxassist.store.models import User
from dxassist.web import csrf
from dxassist.web.audit import client_of, record
from dxassist.web.deps import DB, SESSION_COOKIE, Uploader, allow

router = APIRouter(include_in_schema=False)
TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
TEMPLATES.env.globals["version"] = __version__
TEMPLATES.env.globals["csrf_token"] = csrf.token_for
TEMPLATES.env.globals["login_csrf_token"] = csrf.login_token
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


def _login_form(
    request: Request, next: str, username: str, error: str | None, status_code: int, **headers: str
) -> Response:
    response = TEMPLATES.TemplateResponse(
        request,
        "login.html",
        {"next": _safe_next(next), "error": error, "username": username},
        status_code=status_code,
        headers=headers or None,
    )
    csrf.set_login_cookie(request, response)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    return _login_form(request, next, "", None, status.HTTP_200_OK)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: DB,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    if not csrf.login_ok(request, csrf_token):
        return _login_form(request, next, username, csrf.REFUSED, status.HTTP_403_FORBIDDEN)
    name = username.strip()
    client = request.client.host if request.client else None
    lockout = ratelimit.check(session, name, client)
    if lockout is not None:
        audit.record(
            session,
            audit.Action.LOGIN_FAILED,
            actor=name,
            client=client_of(request),
            detail={"locked": True},
        )
        return _login_form(
            request,
            next,
            username,
            lockout.message(),
            status.HTTP_429_TOO_MANY_REQUESTS,
            **{"Retry-After": str(lockout.retry_after_seconds)},
        )
    user = authenticate(session, name, password) if name else None
    if user is None:
        ratelimit.record_failure(session, name, client)
        # the attempted name (never the password): a guessing attack shows in the trail
        audit.record(session, audit.Action.LOGIN_FAILED, actor=name, client=client_of(request))
        return _login_form(
            request, next, username, "Wrong user name or password.", status.HTTP_401_UNAUTHORIZED
        )
    ratelimit.record_success(session, name)
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
    response.delete_cookie(csrf.LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, session: DB, csrf_token: Annotated[str, Form()] = "") -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        if not csrf.session_ok(request, csrf_token):
            return TEMPLATES.TemplateResponse(
                request,
                "forbidden.html",
                {"user": None, "heading": "Not logged out", "what": csrf.REFUSED},
                status_code=status.HTTP_403_FORBIDDEN,
            )
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
