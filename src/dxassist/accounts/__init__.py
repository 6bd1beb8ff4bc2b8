"""User accounts: argon2id passwords, browser sessions and API tokens for machines."""

from __future__ import annotations

from dxassist.accounts.service import (
    AccountError,
    authenticate,
    create_token,
    create_user,
    end_session,
    has_users,
    resolve_session,
    resolve_token,
    start_session,
)

__all__ = [
    "AccountError",
    "authenticate",
    "create_token",
    "create_user",
    "end_session",
    "has_users",
    "resolve_session",
    "resolve_token",
    "start_session",
]
