"""Request dependencies: the database session, the signed-in user, role checks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.orm import Session, sessionmaker

from dxassist.accounts import resolve_session
from dxassist.accounts.permissions import ROLE_PERMISSIONS, Permission, allowed, roles_with
from dxassist.accounts.service import resolve_api_token
from dxassist.config import Settings
from dxassist.cxr.runtime import CxrModel
from dxassist.interop.delivery import Sender
from dxassist.interop.receiver import DicomReceiver
from dxassist.jobs import Worker
from dxassist.store.models import User

SESSION_COOKIE = "dxassist_session"


@dataclass
class AppState:
    """What every request can reach: settings, the database, the model and the worker."""

    settings: Settings
    sessions: sessionmaker[Session]
    model: CxrModel
    worker: Worker
    sender: Sender | None = None
    receiver: DicomReceiver | None = None


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.dx
    return state


def db_session(state: Annotated[AppState, Depends(app_state)]) -> Iterator[Session]:
    with state.sessions() as session:
        yield session


class NotAuthenticatedError(HTTPException):
    """No valid session cookie or API token; pages turn this into a redirect to /login."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
        )


def current_user(request: Request, session: Annotated[Session, Depends(db_session)]) -> User:
    """The user of a ``Authorization: Bearer <token>`` header or of the session cookie."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticatedError(
                "Authorization header must be 'Bearer <token>'; create a token with "
                "`dxassist token create USER --name NAME`"
            )
        token = token.strip()
        found = (
            resolve_api_token(session, token) if len(token) <= 256 and "\x00" not in token else None
        )
        if found is None:
            raise NotAuthenticatedError(
                "API token unknown or revoked, or its user is disabled; ask an administrator "
                "(`dxassist token list`)"
            )
        user, request.state.token_scopes = found
        return user
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and (len(cookie) > 256 or "\x00" in cookie):
        cookie = "invalid"
    if cookie:
        signed_in = resolve_session(session, cookie)
        if signed_in is not None:
            return signed_in
        raise NotAuthenticatedError("your session has ended (expired, logged out or disabled)")
    raise NotAuthenticatedError("log in first (session cookie) or send an API token")


def token_scopes(request: Request) -> frozenset[str] | None:
    """The scopes of the API token the request came with; None for a session or an
    unscoped token (the role's permissions)."""
    scopes: frozenset[str] | None = getattr(request.state, "token_scopes", None)
    return scopes


def effective_permissions(request: Request, user: User) -> frozenset[Permission]:
    """What this request may do: the role's permissions, cut to the token's scopes."""
    role = ROLE_PERMISSIONS.get(user.role, frozenset())
    scopes = token_scopes(request)
    return role if scopes is None else frozenset(p for p in role if p.value in scopes)


class Allow:
    """A dependency that lets through only users whose role has `permission` (see
    :mod:`dxassist.accounts.permissions`); the route enumeration test finds it on every
    non-public route."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    def __call__(self, request: Request, user: Annotated[User, Depends(current_user)]) -> User:
        if not allowed(user.role, self.permission):
            roles = ", ".join(r.value for r in roles_with(self.permission))
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"this needs the {self.permission.value} permission (roles: {roles}); "
                f"you are {user.role.value}",
            )
        scopes = token_scopes(request)
        if scopes is not None and self.permission.value not in scopes:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"this needs the {self.permission.value} permission, which this API "
                f"token's scopes ({', '.join(sorted(scopes))}) leave out; create a token "
                f"with `--scope {self.permission.value}`",
            )
        return user


def allow(permission: Permission) -> Any:
    """``Depends`` on :class:`Allow` for `permission`."""
    return Depends(Allow(permission))


#: Readers of studies: worklist, study, images, heatmaps, FHIR.
Reader = Annotated[User, allow(Permission.STUDIES_READ)]
Uploader = Annotated[User, allow(Permission.STUDIES_UPLOAD)]
Reviewer = Annotated[User, allow(Permission.STUDIES_REVIEW)]
Resender = Annotated[User, allow(Permission.RESULTS_RESEND)]
Releaser = Annotated[User, allow(Permission.STUDIES_RELEASE)]
Integrator = Annotated[User, allow(Permission.RESULTS_IDENTIFIED)]
Exporter = Annotated[User, allow(Permission.EXPORT_TRAINING)]
Auditor = Annotated[User, allow(Permission.AUDIT_READ)]
Self = Annotated[User, allow(Permission.SELF)]
DB = Annotated[Session, Depends(db_session)]
State = Annotated[AppState, Depends(app_state)]
