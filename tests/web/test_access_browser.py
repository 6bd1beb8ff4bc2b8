"""The login and logout forms in a real browser: their CSRF tokens travel with them, the
rate limit's message shows on the login page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.web.test_browser import (  # fixtures and helpers (skips without Chromium)
    USER,
    Running,
    artifacts,
    browser,
    expect,
    log_in,
    serve,
    tabs,
)

__all__ = ["artifacts", "browser", "serve", "tabs"]  # fixtures used by name


def test_log_in_out_and_the_lock_in_browser(
    serve: Callable[..., Running], tabs: Callable[[], Any]
) -> None:
    server = serve(start_worker=False)
    page = tabs().page
    log_in(page, server.url)
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{server.url}/login")
    page.goto(f"{server.url}/")
    expect(page).to_have_url(f"{server.url}/login?next=/")  # the session really ended

    for _ in range(5):
        page.get_by_label("User name").fill(USER.upper())
        page.get_by_label("Password").fill("wrong password")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_contain_text("Wrong user name or password")
    page.get_by_label("User name").fill(USER)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "Too many failed attempts for this user name; try again in 15 minutes or ask an "
        "administrator"
    )
