"""Login rate limiting: too many failed logins for one user name, or from one client
address, and further attempts are refused for a while, even with the right password.

The failures are rows of the ``login_failure`` table, so the limit holds across a
restart and across several server processes sharing the database. A success clears the
user name's failures (not the address's: one person logging in does not clear another's
guessing from the same address). ``dxassist user unlock NAME`` clears a name's failures.

Checks and records are separate statements, so a few attempts racing in at the same
instant from several processes may slip past the limit; each still costs an argon2
verification, so this does not help guessing in any useful way.

API tokens are not rate limited: they are 256-bit random values, so guessing one is
hopeless at any request rate (an attacker making a billion guesses a second for the
age of the universe would cover under 2^-150 of them).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from dxassist.store.models import LoginFailure, utcnow

#: Failed logins counted: those in the last WINDOW.
WINDOW = timedelta(minutes=15)
#: Failures for one user name (any case) within WINDOW that lock it.
MAX_PER_USERNAME = 5
#: Failures from one client address within WINDOW that lock it.
MAX_PER_CLIENT = 20


@dataclass(frozen=True)
class Lockout:
    """Why logins are refused now, and for how long."""

    reason: str  # "user name" or "address"
    retry_after_seconds: int

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after_seconds / 60))

    def message(self) -> str:
        return (
            f"Too many failed attempts for this {self.reason}; try again in "
            f"{self.minutes} minute{'s' if self.minutes != 1 else ''} or ask an administrator "
            "(`dxassist user unlock NAME`)."
        )


def username_hash(username: str) -> str:
    return hashlib.sha256(username.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()


def _client(client: str | None) -> str:
    return (client or "unknown")[:64]


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _retry_after(
    session: Session, where: ColumnElement[bool], limit: int, now: datetime
) -> int | None:
    """Seconds until fewer than `limit` failures matching `where` are in the window, or
    None when there are fewer already."""
    times = list(
        session.scalars(
            select(LoginFailure.at)
            .where(where, LoginFailure.at > now - WINDOW)
            .order_by(LoginFailure.at.desc())
            .limit(limit)
        )
    )
    if len(times) < limit:
        return None
    # the limit-th newest failure has to leave the window before one more attempt counts
    free_at = _aware(times[-1]) + WINDOW
    return max(1, math.ceil((free_at - now).total_seconds()))


def check(session: Session, username: str, client: str | None) -> Lockout | None:
    """The lockout in force for this user name or client address, or None."""
    now = utcnow()
    seconds = _retry_after(
        session, LoginFailure.username_hash == username_hash(username), MAX_PER_USERNAME, now
    )
    if seconds is not None:
        return Lockout("user name", seconds)
    seconds = _retry_after(session, LoginFailure.client == _client(client), MAX_PER_CLIENT, now)
    if seconds is not None:
        return Lockout("address", seconds)
    return None


def record_failure(session: Session, username: str, client: str | None) -> None:
    """Count a failed login. Sweeps failures older than the window. Commits."""
    now = utcnow()
    session.execute(delete(LoginFailure).where(LoginFailure.at <= now - WINDOW))
    session.add(LoginFailure(at=now, username_hash=username_hash(username), client=_client(client)))
    session.commit()


def record_success(session: Session, username: str) -> None:
    """A correct login: forget the user name's failures. Commits."""
    clear(session, username)


def clear(session: Session, username: str) -> int:
    """Forget the failures of `username` (unlock it); returns how many there were in the
    window. Commits."""
    key = username_hash(username)
    now = utcnow()
    recent = session.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(LoginFailure.username_hash == key, LoginFailure.at > now - WINDOW)
    )
    session.execute(delete(LoginFailure).where(LoginFailure.username_hash == key))
    session.commit()
    return int(recent or 0)
