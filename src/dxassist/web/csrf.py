"""CSRF tokens for the HTML forms (log in, log out), on top of the Origin/Referer check
of the ``security`` middleware in :mod:`dxassist.web.app`.

* Signed in: the token is an HMAC of the session cookie (which is HttpOnly, so another
  site's script cannot read it); nothing is stored, and it changes with every login.
* The login form (no session yet): a random pre-session token in its own HttpOnly,
  SameSite=Strict cookie, and the same value in the form ("double submit").

A form POST without the token, or with a wrong one, is refused with 403.

The pages' JavaScript calls the JSON API with ``fetch`` (same origin, session cookie).
Those requests are protected by the Origin/Referer check alone: every browser dxassist
supports sends ``Origin`` on a cross-site POST (a form's or a fetch's), so a cross-site
request is refused before it reaches a route, and a cross-site ``fetch`` cannot read an
answer (no CORS headers are ever sent) nor send JSON or a custom header without a
preflight that fails.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request
from fastapi.responses import Response

from dxassist.web.deps import SESSION_COOKIE

#: The pre-session cookie of the login form.
LOGIN_COOKIE = "dxassist_login_csrf"
#: The hidden form field.
FIELD = "csrf_token"
_MAX = 256


def for_session(cookie: str) -> str:
    """The CSRF token of the session whose cookie value is `cookie`."""
    return hmac.new(cookie.encode("utf-8"), b"dxassist csrf v1", hashlib.sha256).hexdigest()


def token_for(request: Request) -> str:
    """The token a form on this page must carry: the session's, or (not signed in) the
    login form's pre-session token (see :func:`login_token`)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and len(cookie) <= _MAX:
        return for_session(cookie)
    return login_token(request)


def login_token(request: Request) -> str:
    """The login form's token: the pre-session cookie's value, or a new one (set on the
    response by :func:`set_login_cookie`)."""
    existing = getattr(request.state, "login_csrf", None)
    if isinstance(existing, str):
        return existing
    value = request.cookies.get(LOGIN_COOKIE, "")
    if not (20 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum()):
        value = secrets.token_urlsafe(32)
    request.state.login_csrf = value
    return value


def set_login_cookie(request: Request, response: Response) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        login_token(request),
        max_age=12 * 3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/login",
    )


def _same(expected: str, given: str) -> bool:
    return bool(given) and len(given) <= _MAX and hmac.compare_digest(expected, given)


def login_ok(request: Request, given: str) -> bool:
    """Whether a login POST carries the token of its pre-session cookie."""
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    return bool(cookie) and _same(cookie, given)


def session_ok(request: Request, given: str) -> bool:
    """Whether a signed-in form POST carries its session's token."""
    cookie = request.cookies.get(SESSION_COOKIE, "")
    return bool(cookie) and len(cookie) <= _MAX and _same(for_session(cookie), given)


REFUSED = (
    "This form was not sent from dxassist's own page, or it expired (missing or wrong CSRF "
    "token). Reload the page and try again."
)
