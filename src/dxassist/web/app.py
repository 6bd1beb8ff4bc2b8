"""Build the FastAPI application: state, routers, error handlers, security headers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from dxassist import __version__
from dxassist.audit.trail import AuditUnavailableError
from dxassist.config import Settings
from dxassist.cxr.runtime import CxrModel
from dxassist.errors import DxAssistError
from dxassist.ingest import sweep_orphans
from dxassist.interop.delivery import Sender
from dxassist.interop.receiver import DicomReceiver
from dxassist.jobs import Worker
from dxassist.privacy import load_or_create_site_secret
from dxassist.store import upgrade_to_head
from dxassist.store.db import session_factory_for
from dxassist.web import api, assist, pages, prognosis
from dxassist.web import audit as audit_web
from dxassist.web.deps import SESSION_COOKIE, AppState

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'"
    ),
}


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith(("/api/", "/healthz", "/readyz", "/openapi"))


def create_app(
    settings: Settings | None = None,
    model: CxrModel | None = None,
    *,
    start_worker: bool = True,
    migrate: bool = True,
) -> FastAPI:
    """The dxassist web app.

    Parameters
    ----------
    settings:
        Defaults to :meth:`Settings.from_env`.
    model:
        The chest X-ray model; the shipped one unless given.
    start_worker:
        Run the in-process analysis worker while the app runs (tests turn it off and
        drain the worker themselves).
    migrate:
        Bring the database schema to the newest version when the app is created.
    """
    settings = settings or Settings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if migrate:
        upgrade_to_head(settings.database_url)
    model = model or CxrModel.load()
    sessions = session_factory_for(settings.database_url)
    with sessions() as session:
        sweep_orphans(settings, session)
    load_or_create_site_secret(settings.data_dir)  # now, not in racing first uploads
    sender = Sender(settings, sessions)
    worker = Worker(settings, model, sessions, on_analysed=sender.wake)
    receiver = (
        DicomReceiver(
            settings,
            sessions,
            port=settings.dicom_port,
            host=settings.dicom_host,
            on_stored=worker.wake,
        )
        if settings.dicom_port
        else None
    )
    state = AppState(
        settings=settings,
        sessions=sessions,
        model=model,
        worker=worker,
        sender=sender,
        receiver=receiver,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if start_worker:
            worker.start()
            sender.start()
        if receiver is not None:
            receiver.start()
        try:
            yield
        finally:
            if receiver is not None:
                receiver.stop()
            if start_worker:
                sender.stop()
                worker.stop()

    app = FastAPI(
        title="dxassist",
        version=__version__,
        description=(
            "AI second opinions for chest radiographs: ingest, worklist, review. "
            "Research use only: not a medical device."
        ),
        lifespan=lifespan,
        docs_url=None,  # the Swagger UI loads from a CDN, which a hospital network lacks
        redoc_url=None,
    )
    app.state.dx = state

    @app.middleware("http")
    async def security(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # a form or fetch from another site must not act with the user's session cookie, nor
        # log the browser in to an account of the attacker's (login CSRF)
        if request.method in UNSAFE_METHODS and (
            SESSION_COOKIE in request.cookies or request.url.path == "/login"
        ):
            origin = request.headers.get("origin") or request.headers.get("referer")
            if origin and urlsplit(origin).netloc != request.url.netloc:
                return JSONResponse(
                    {"detail": "cross-site request refused: use dxassist's own pages"},
                    status_code=status.HTTP_403_FORBIDDEN,
                )
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == status.HTTP_401_UNAUTHORIZED and _wants_html(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            from urllib.parse import quote

            return RedirectResponse(f"/login?next={quote(target)}", status.HTTP_303_SEE_OTHER)
        if exc.status_code == status.HTTP_403_FORBIDDEN and _wants_html(request):
            from dxassist.web.pages import TEMPLATES

            return TEMPLATES.TemplateResponse(
                request,
                "forbidden.html",
                {"user": None, "what": exc.detail},
                status_code=status.HTTP_403_FORBIDDEN,
            )
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for err in exc.errors():
            kind = err.get("type", "")
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
            if kind == "json_invalid":
                problems.append(
                    f"the body is not valid JSON ({err.get('ctx', {}).get('error', 'invalid')});"
                    " send a JSON object with Content-Type: application/json"
                )
            elif kind in ("model_attributes_type", "dict_type") and not where:
                problems.append(
                    "the body must be a JSON object (Content-Type: application/json), e.g. "
                    '{"labels": ["normal"], "agrees_with_ai": true, "note": ""}'
                )
            elif kind == "extra_forbidden":
                problems.append(f"{where}: unknown field; remove it")
            else:
                problems.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
        return JSONResponse(
            {"detail": "; ".join(problems), "errors": _jsonable_errors(exc.errors())},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    @app.exception_handler(OSError)
    async def storage_error(_request: Request, exc: OSError) -> Response:
        log.error("storage error: %s", exc)
        return JSONResponse(
            {
                "detail": "the server cannot read or write its data folder "
                f"({exc.strerror or type(exc).__name__}); nothing was stored. Tell the "
                "administrator (disk full, or permissions of DXASSIST_DATA_DIR)"
            },
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers=SECURITY_HEADERS,
        )

    @app.exception_handler(OperationalError)
    async def database_down(_request: Request, exc: OperationalError) -> Response:
        log.error("database error: %s", exc)
        return JSONResponse(
            {
                "detail": "the database is unavailable; try again shortly, and tell the "
                "administrator if it persists"
            },
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers=SECURITY_HEADERS,
        )

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, exc: Exception) -> Response:
        log.exception("internal error")
        return JSONResponse(
            {
                "detail": f"internal error ({type(exc).__name__}); this is a bug in dxassist: "
                "report it with the server log"
            },
            status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
            headers=SECURITY_HEADERS,
        )

    @app.exception_handler(DxAssistError)
    async def dxassist_error(_request: Request, exc: DxAssistError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["health"])
    def readyz() -> Response:
        """Ready to take studies: database reachable, model loaded, worker running."""
        checks: dict[str, str] = {}
        try:
            with sessions() as session:
                session.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # report, do not raise: this is the probe's answer
            checks["database"] = f"unreachable: {type(exc).__name__}"
        checks["model"] = f"{model.info.name} {model.info.version}"
        checks["worker"] = "running" if worker.running or not start_worker else "stopped"
        ok = checks["database"] == "ok" and checks["worker"] == "running"
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": checks},
            status_code=status.HTTP_200_OK if ok else status.HTTP_503_SERVICE_UNAVAILABLE,
        )

    app.include_router(api.router)
    app.include_router(assist.router)
    app.include_router(pages.router)
    app.include_router(prognosis.router)
    app.include_router(audit_web.router)
    app.add_exception_handler(AuditUnavailableError, audit_web.audit_unavailable)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _jsonable_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        out.append({"loc": list(err.get("loc", ())), "msg": str(err.get("msg", ""))})
    return out
