"""The /prognosis page in headless Chromium: enter labs, see risk, band, reasons and
warnings; an impossible value shows the server's message. JS errors and CSP violations
fail the test (the `tabs` fixture of test_browser)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dxassist.prognosis.runtime import PrognosisModel
from tests.web.test_browser import (  # fixtures and helpers (skips without Chromium)
    Running,
    artifacts,
    browser,
    expect,
    log_in,
    serve,
    tabs,
)

__all__ = ["artifacts", "browser", "serve", "tabs"]  # fixtures used by name


def test_prognosis_page_in_browser(
    serve: Callable[..., Running], tabs: Callable[[], Any], artifacts: Path
) -> None:
    server = serve(start_worker=False)
    page = tabs().page
    log_in(page, server.url)
    page.get_by_role("link", name="Outcome risk").click()
    expect(page).to_have_url(f"{server.url}/prognosis")
    expect(page.locator("#prognosis-model")).to_contain_text("dxassist-prognosis-3lab")

    page.locator('input[name="id"]').fill("bed 12")
    page.locator('input[name="LDH"]').fill("412")
    page.locator('input[name="hsCRP"]').fill("56")
    page.locator('input[name="lymphocyte_pct"]').fill("9.5")
    page.get_by_role("button", name="Estimate risk").click()
    expected = PrognosisModel.load().predict({"LDH": 412, "hsCRP": 56, "lymphocyte_pct": 9.5})
    expect(page.locator("#prognosis-risk-value")).to_have_text(f"{expected.risk * 100:.1f}%")
    expect(page.locator("#prognosis-band")).to_have_text(expected.band)
    expect(page.locator("#prognosis-reasons li")).to_have_count(3)
    expect(page.locator("#prognosis-reasons li").first).to_have_text(expected.reasons[0])
    expect(page.locator("#prognosis-warnings li")).to_have_text("none")
    expect(page.locator("#prognosis-id")).to_have_text("Patient bed 12")
    page.screenshot(path=str(artifacts / "prognosis-result.png"), full_page=True)

    # a missing lab is answered with a warning
    page.locator('input[name="hsCRP"]').fill("")
    page.get_by_role("button", name="Estimate risk").click()
    expect(page.locator("#prognosis-warnings li").first).to_contain_text("hsCRP not given")

    # an impossible value: the server's message, no result
    page.locator('input[name="lymphocyte_pct"]').fill("140")
    page.get_by_role("button", name="Estimate risk").click()
    expect(page.locator("#prognosis-error")).to_contain_text("cannot exceed 100")
    expect(page.locator("#prognosis-result")).to_be_hidden()
    page.screenshot(path=str(artifacts / "prognosis-error.png"), full_page=True)
