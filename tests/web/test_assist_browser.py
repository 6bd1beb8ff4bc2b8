"""The /assist page in headless Chromium: free text and a symptom in, a differential and
the text mapping out, then one interview step by a question button. No JS errors or CSP
violations (the ``tabs`` fixture fails the test on any)."""

from __future__ import annotations

from typing import Any

from tests.web.test_browser import (  # noqa: F401  (fixtures)
    artifacts,
    browser,
    expect,
    log_in,
    serve,
    server,
    tabs,
)


def test_assistant_page_interview(server: Any, tabs: Any, artifacts: Any) -> None:  # noqa: F811
    page = tabs().page
    log_in(page, server.url)
    page.get_by_role("link", name="Assistant").click()
    expect(page).to_have_url(f"{server.url}/assist")
    page.wait_for_selector("#assist-dataset option[value=mz10]", state="attached")
    # a fresh user gets the default (DDXPlus), with its population shown next to the picker
    expect(page.locator("#assist-dataset")).to_have_value("ddxplus")
    expect(page.locator("#assist-population")).to_contain_text("adults and children")
    expect(page.locator("#assist-dataset option[value=mz4]")).to_contain_text("paediatric")
    page.select_option("#assist-dataset", "mz10")
    expect(page.locator("#assist-population")).to_contain_text("Patients: paediatric")
    expect(page.locator("#assist-vocab option").first).to_be_attached()
    page.fill("#assist-text", "宝宝发烧两天，咳嗽有痰，没有拉肚子")
    page.fill("#assist-symptom", "鼻流涕 (runny nose)")
    page.click("#assist-add")
    expect(page.locator("#assist-chosen li")).to_have_count(1)
    page.click("#assist-go")
    rows = page.locator("#assist-diff tbody tr")
    expect(rows).to_have_count(5)
    marks = page.locator("#assist-mapped mark")
    expect(marks).to_have_count(4)
    expect(marks.nth(3)).to_have_text("拉肚子")
    expect(marks.nth(3)).to_have_class("neg")  # shown as negated
    first_before = rows.first.inner_text()
    question = page.locator("#assist-questions li").first
    expect(question).to_be_visible()
    question.get_by_role("button", name="Yes").click()
    expect(page.locator("#assist-chosen li")).to_have_count(2)  # the answer is listed
    expect(rows.first).not_to_have_text(first_before)
    page.screenshot(path=str(artifacts / "assist.png"), full_page=True)
