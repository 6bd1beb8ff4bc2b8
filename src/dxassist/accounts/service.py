"""Accounts: create users, check passwords, issue and resolve session cookies and tokens.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106 low-memory profile).
Session cookies and API tokens are random 256-bit strings; only their SHA-256 is stored,
so a copy of the database does not let anyone log in.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from dxassist.errors import InputError
from dxassist.store.models import ApiToken, Role, User, WebSession, new_id, utcnow

#: How long a browser login lasts without logging in again (a radiologist's shift).
SESSION_HOURS = 12
#: Shortest password accepted.
MIN_PASSWORD_LENGTH = 10
#: A token's last use is written at most this often (not on every request: a poller would
#: turn every GET into a database write).
LAST_USED_RESOLUTION = timedelta(minutes=1)
#: Prefix of API tokens, so a leaked one is recognisable in logs and secret scanners.
TOKEN_PREFIX = "dxa_"
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")

_hasher = PasswordHasher()
#: Verified against when the user does not exist, so timing does not tell which names exist.
_DUMMY_HASH = _hasher.hash("not a real password: timing equaliser")


class AccountError(InputError):
    """A user cannot be created (bad name, weak password, name taken, unknown role)."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _aware(dt: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns; they are UTC."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def has_users(session: Session) -> bool:
    return bool(session.scalar(select(func.count()).select_from(User)))


def create_user(session: Session, username: str, password: str, role: str) -> User:
    """Add a user. Commits. Raises :class:`AccountError` with what to fix."""
    if not USERNAME_RE.match(username):
        raise AccountError(
            f"user name {username!r} is not allowed: use 1-64 letters, digits, '.', '_', "
            "'@' or '-', starting with a letter or digit"
        )
    try:
        role_value = Role(role)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise AccountError(f"unknown role {role!r}; use one of: {roles}") from None
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"password too short ({len(password)} characters); use at least {MIN_PASSWORD_LENGTH}"
        )
    if session.scalar(select(User).where(func.lower(User.username) == username.lower())):
        raise AccountError(f"user {username!r} already exists")
    user = User(
        id=new_id(),
        username=username,
        password_hash=_hasher.hash(password),
        role=role_value,
        active=True,
        created_at=utcnow(),
    )
    session.add(user)
    session.commit()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, or None (same time either way)."""
    if "\x00" in username or len(username) > 256:
        username = ""  # never a valid name; still spend the hashing time below
    user = session.scalar(select(User).where(func.lower(User.username) == username.lower()))
    if user is None or not user.active:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        session.commit()
    return user


def start_session(session: Session, user: User) -> str:
    """A new browser session for `user`; returns the cookie value. Commits."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    # expired sessions of anyone are swept here, so the table does not grow without end
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    session.add(
        WebSession(
            token_hash=_digest(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + timedelta(hours=SESSION_HOURS),
        )
    )
    session.commit()
    return token


def resolve_session(session: Session, token: str) -> User | None:
    """The user a session cookie belongs to, if it is valid and not expired."""
    row = session.get(WebSession, _digest(token))
    if row is None or _aware(row.expires_at) <= utcnow():
        return None
    user = session.get(User, row.user_id)
    return user if user is not None and user.active else None


def end_session(session: Session, token: str) -> None:
    """Log out: forget the session. Commits."""
    session.execute(delete(WebSession).where(WebSession.token_hash == _digest(token)))
    session.commit()


def check_scopes(role: Role, scopes: Iterable[str]) -> list[str]:
    """`scopes` as sorted, distinct permission values; raises :class:`AccountError` for an
    unknown permission or one the role does not have."""
    from dxassist.accounts.permissions import ROLE_PERMISSIONS, Permission

    out: set[str] = set()
    for scope in scopes:
        try:
            permission = Permission(scope.strip())
        except ValueError:
            known = ", ".join(p.value for p in Permission)
            raise AccountError(f"unknown scope {scope!r}; use permissions: {known}") from None
        if permission not in ROLE_PERMISSIONS.get(role, frozenset()):
            raise AccountError(
                f"scope {permission.value} is not a permission of the {role.value} role, so "
                "the token could never use it (see docs/permissions.md)"
            )
        out.add(permission.value)
    return sorted(out)


def create_token(
    session: Session, user: User, name: str, scopes: Iterable[str] | None = None
) -> str:
    """A new API token acting as `user`; returns it (shown once, never stored). Commits.

    With `scopes` (permission values), the token may do only that, and only while the
    user's role allows it; without, whatever the user's role may do."""
    if not name.strip():
        raise AccountError("give the token a name that says what uses it, e.g. 'gateway'")
    scope_list = None if scopes is None else check_scopes(user.role, scopes)
    if scope_list == []:
        raise AccountError("give at least one --scope, or none for the role's permissions")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            id=new_id(),
            user_id=user.id,
            name=name.strip()[:128],
            token_hash=_digest(token),
            created_at=utcnow(),
            revoked=False,
            scopes=scope_list,
        )
    )
    session.commit()
    return token


def resolve_token(session: Session, token: str) -> User | None:
    """The user an API token acts as, if it exists and is not revoked.

    Records the time of use (to the minute; commits when it changes)."""
    found = resolve_api_token(session, token)
    return found[0] if found is not None else None


def resolve_api_token(session: Session, token: str) -> tuple[User, frozenset[str] | None] | None:
    """The user an API token acts as and its scopes (None: the role's permissions), if the
    token exists and is not revoked. Records the time of use (as :func:`resolve_token`)."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None or row.revoked:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    now = utcnow()
    if row.last_used_at is None or now - _aware(row.last_used_at) >= LAST_USED_RESOLUTION:
        row.last_used_at = now
        session.commit()
    return user, (frozenset(row.scopes) if row.scopes is not None else None)


def set_password(session: Session, user: User, password: str) -> None:
    """Replace a user's password and end their browser sessions. Commits."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"password too short ({len(password)} characters); use at least {MIN_PASSWORD_LENGTH}"
        )
    user.password_hash = _hasher.hash(password)
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    session.commit()


def set_active(session: Session, user: User, active: bool) -> None:
    """Enable or disable a user; disabling ends their sessions (tokens stop working too,
    since a disabled user's token is refused). Commits."""
    user.active = active
    if not active:
        session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    session.commit()


def set_role(session: Session, user: User, role: Role) -> None:
    """Give `user` another role; their sessions end (what they may do has changed). Their
    API tokens keep working within the new role (scopes never widen it). Commits."""
    user.role = role
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    session.commit()


def list_tokens(session: Session) -> list[tuple[ApiToken, User]]:
    """Every API token with its user, newest first."""
    rows = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .order_by(ApiToken.created_at.desc())
    ).all()
    return [(token, user) for token, user in rows]


def revoke_token(session: Session, token_id: str) -> ApiToken | None:
    """Revoke the token whose id starts with `token_id` (at least 8 characters). Commits.

    Returns None when no token matches; raises :class:`AccountError` when several do."""
    if len(token_id) < 8:
        raise AccountError("give at least the first 8 characters of the token id")
    matches = list(session.scalars(select(ApiToken).where(ApiToken.id.startswith(token_id))))
    if len(matches) > 1:
        raise AccountError(f"{len(matches)} tokens have ids starting {token_id!r}; give more")
    if not matches:
        return None
    matches[0].revoked = True
    session.commit()
    return matches[0]


def find_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.username) == username.lower()))
