"""The audit trail in the web app: recording helpers for the routes, the admin API
``GET /api/v1/audit`` and the admin page ``/audit``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.orm import Session

from dxassist.audit import trail as audit
from dxassist.store.models import User
from dxassist.web.deps import DB, Auditor

router = APIRouter()


def client_of(request: Request) -> str | None:
    """The address the request came from (the proxy's, behind one)."""
    return request.client.host if request.client is not None else None


def record(
    request: Request,
    session: Session,
    user: User,
    action: audit.Action,
    study_id: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append an entry for `user` doing `action`; raises AuditUnavailableError (503)."""
    audit.record(
        session,
        action,
        actor=user.username,
        actor_role=user.role.value,
        study_id=study_id,
        detail=detail,
        client=client_of(request),
    )


def record_worklist(request: Request, session: Session, user: User, total: int, shown: int) -> None:
    """One worklist_view per user, client and query every WORKLIST_INTERVAL_S (the page
    polls every few seconds; repeating the same view adds nothing to who-saw-what)."""
    throttle: audit.Throttle | None = getattr(request.app.state, "audit_worklist", None)
    if throttle is None:  # one per app (and so per database)
        throttle = request.app.state.audit_worklist = audit.Throttle(audit.WORKLIST_INTERVAL_S)
    key = (user.username, client_of(request) or "", str(request.url.query))
    if not throttle.due(key):
        return
    try:
        record(
            request,
            session,
            user,
            audit.Action.WORKLIST_VIEW,
            # the filter names only: a query string is free text anyone can put a name in
            detail={"filters": sorted(request.query_params.keys()), "total": total, "shown": shown},
        )
    except audit.AuditUnavailableError:
        throttle.forget(key)
        raise


def audit_unavailable(_request: Request, exc: Exception) -> Response:
    """The exception handler: the action was not done because it could not be audited."""
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)


@router.get("/api/v1/audit", tags=["audit"])
def audit_list(
    request: Request,
    session: DB,
    user: Auditor,
    user_: Annotated[str | None, Query(alias="user", description="actor (username)")] = None,
    study: Annotated[str | None, Query(description="study id")] = None,
    action: Annotated[str | None, Query(description="e.g. study_view, login_failed")] = None,
    since: Annotated[str | None, Query(description="YYYY-MM-DD or ISO date-time")] = None,
    until: Annotated[
        str | None, Query(description="YYYY-MM-DD (inclusive) or ISO date-time (exclusive)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_LIST)] = 100,
) -> dict[str, Any]:
    """The audit trail, newest first, filtered (admins: audit:read). Viewing it is itself
    recorded (audit_view)."""
    query = audit.AuditQuery(
        user=user_.strip() if user_ and user_.strip() else None,
        study=study.strip() if study and study.strip() else None,
        action=audit.parse_action(action),
        since=audit.parse_when(since, "since"),
        until=audit.parse_when(until, "until", end=True),
        limit=limit,
    )
    items = [audit.as_dict(e) for e in audit.events(session, query)]
    filters = {
        k: v
        for k, v in {
            "user": query.user,
            "study": query.study,
            "action": query.action,
            "since": since,
            "until": until,
        }.items()
        if v
    }
    record(request, session, user, audit.Action.AUDIT_VIEW, detail={**filters, "shown": len(items)})
    return {"items": items, "limit": limit, "actions": [a.value for a in audit.Action]}


@router.get("/audit", response_class=HTMLResponse, include_in_schema=False)
def audit_page(request: Request, user: Auditor) -> Response:
    from dxassist.web.pages import TEMPLATES

    return TEMPLATES.TemplateResponse(
        request, "audit.html", {"user": user, "actions": [a.value for a in audit.Action]}
    )
