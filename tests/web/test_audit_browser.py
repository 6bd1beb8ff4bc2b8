"""The /audit page in headless Chromium: an admin sees the trail and filters it; JS errors
and CSP violations fail the test (the `tabs` fixture of test_browser)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dxassist.accounts import create_user
from tests.web.test_browser import (  # fixtures and helpers (skips without Chromium)
    PASSWORD,
    USER,
    Running,
    artifacts,
    browser,
    expect,
    serve,
    tabs,
)

__all__ = ["artifacts", "browser", "serve", "tabs"]  # fixtures used by name


def test_audit_page_in_browser(serve: Callable[..., Running], tabs: Callable[[], Any]) -> None:
    server = serve(start_worker=False)
    with server.session() as session:
        create_user(session, "boss", PASSWORD, "admin")
    page = tabs().page
    # a failed login, then the admin logs in
    page.goto(f"{server.url}/login")
    page.get_by_label("User name").fill(USER)
    page.get_by_label("Password").fill("wrong password here")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("body")).to_contain_text("Wrong user name or password")
    page.get_by_label("User name").fill("boss")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Audit").click()
    expect(page).to_have_url(f"{server.url}/audit")
    rows = page.locator("#audit-table tbody tr")
    # (the worklist page the admin landed on may have added a worklist_view)
    expect(page.locator('#audit-table tbody tr[data-action="login"]')).to_contain_text("boss")
    expect(page.locator('#audit-table tbody tr[data-action="login_failed"]')).to_contain_text(USER)
    expect(rows.last).to_contain_text("login_failed")  # the oldest entry

    page.locator('select[name="action"]').select_option("login_failed")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(f"{server.url}/audit?action=login_failed")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(USER)

    page.locator('input[name="user"]').fill("nobody")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit-empty")).to_be_visible()
    # each listing was recorded
    page.get_by_role("button", name="Clear").click()
    expect(page.locator("#audit-table tbody tr", has_text="audit_view")).to_have_count(3)
