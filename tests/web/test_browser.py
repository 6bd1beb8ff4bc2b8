"""End to end in a real browser: headless Chromium (Debian's) driven by Playwright, against
a real uvicorn server with the in-process worker and the shipped model.

Log in through the form, upload a real CR and an NIH PNG on the upload page, watch them
become ready on the worklist, read one in the viewer (probability bars, heatmap, window
and level, zoom), review both (keyboard and form) and see them leave the open worklist
of a second tab without reloading it. Also: a refused upload shows the engine's error and
stores nothing; a failed study shows its reason, can be retried and reviewed without the
AI; a study still waiting fills in by itself once read. Screenshots go to
$DXASSIST_TEST_ARTIFACTS (one folder per test) or a folder under the test's tmp_path.
"""

from __future__ import annotations

import csv
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dxassist.cxr.taxonomy import DISPLAY_NAMES as FINDING_NAMES
from dxassist.cxr.taxonomy import FINDINGS
from dxassist.cxr.taxonomy import REVIEW_LABEL_NAMES as LABEL_NAMES

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
USER, PASSWORD = "rad1", "a-long-password"
#: How long a study may take from upload to ready (the model reads one in ~1.5 s).
READY_TIMEOUT_MS = 30_000
WORKLIST_POLL_MS = 4_000


def _need(what: str) -> None:
    """Skip without the browser, but fail in CI, where a skip would hide a broken setup."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI is set, so this is a failure, not a skip)")
    pytest.skip(what, allow_module_level=True)


if not CHROMIUM.is_file():
    _need(f"{CHROMIUM} not found: apt-get install chromium")

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - dev extra missing
    _need("playwright is not installed: pip install -e '.[dev]'")
    raise


# ---------------------------------------------------------------- fixtures


@dataclass
class Running:
    url: str
    settings: Any
    worker: Any

    def session(self) -> Any:
        from dxassist.store.db import session_factory_for

        return session_factory_for(self.settings.database_url)()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """Starts dxassist on a free port in a background thread (uvicorn, as `dxassist serve`
    does), with one radiologist account and its own data folder."""
    import uvicorn

    from dxassist.accounts import create_user
    from dxassist.config import Settings
    from dxassist.store.db import session_factory_for
    from dxassist.web import create_app

    started: list[tuple[uvicorn.Server, threading.Thread, Any]] = []

    def start(*, start_worker: bool = True) -> Running:
        settings = Settings.for_data_dir(tmp_path / f"data{len(started)}")
        app = create_app(settings, start_worker=start_worker)
        with session_factory_for(settings.database_url)() as session:
            create_user(session, USER, PASSWORD, "radiologist")
        port = _free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        uv = uvicorn.Server(config)
        thread = threading.Thread(target=uv.run, name="uvicorn", daemon=True)
        thread.start()
        worker = app.state.dx.worker
        started.append((uv, thread, worker))
        deadline = time.monotonic() + 15
        while not uv.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("uvicorn did not start")
            time.sleep(0.02)
        return Running(f"http://127.0.0.1:{port}", settings, worker)

    try:
        yield start
    finally:
        for uv, thread, worker in started:
            uv.should_exit = True
            thread.join(timeout=15)
            worker.stop()  # a worker a test started itself


@pytest.fixture
def server(serve: Callable[..., Running]) -> Running:
    return serve()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def artifacts(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    env = os.environ.get("DXASSIST_TEST_ARTIFACTS")
    folder = (Path(env) / request.node.name) if env else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder


@dataclass
class Tab:
    page: Page
    problems: list[str]


@pytest.fixture
def tabs(browser: Browser) -> Iterator[Any]:
    """Opens tabs in one browser context (one session cookie); records JS errors and CSP
    violations, which must not happen."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(15_000)
    opened: list[Tab] = []

    def open_tab() -> Tab:
        page = context.new_page()
        tab = Tab(page, [])
        page.on("pageerror", lambda exc: tab.problems.append(f"page error: {exc}"))

        def console(msg: Any) -> None:
            if msg.type == "error" and "Failed to load resource" not in msg.text:
                tab.problems.append(f"console error: {msg.text}")

        page.on("console", console)
        page.on(
            "response",
            lambda r: r.status >= 500 and tab.problems.append(f"HTTP {r.status}: {r.url}"),
        )
        opened.append(tab)
        return tab

    try:
        yield open_tab
    finally:
        context.close()
    problems = [p for tab in opened for p in tab.problems]
    assert not problems, "\n".join(problems)


@pytest.fixture
def nih_pngs(shared_data: Path) -> list[Path]:
    """Two adult NIH ChestX-ray14 PNGs from the test split."""
    found = []
    with (shared_data / "cxr" / "manifest.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            path = shared_data / "cxr" / row["path"]
            if row["dataset"] == "nih" and row["split"] == "test" and path.is_file():
                found.append(path)
            if len(found) == 2:
                return found
    pytest.fail("fewer than two NIH test-split PNGs in the shared data")


# ---------------------------------------------------------------- helpers


def log_in(page: Page, base: str) -> None:
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/login?next=/")
    page.get_by_label("User name").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base}/")


def api(page: Page, base: str, path: str) -> Any:
    """GET an API path with the browser's session cookie."""
    response = page.request.get(f"{base}{path}")
    assert response.ok, (path, response.status, response.text())
    return response.json()


def canvas_stats(page: Page) -> dict[str, float]:
    """Mean grey level and colourfulness (mean |R-B|) of what the viewer canvas shows."""
    return page.evaluate(
        """() => {
          const c = document.getElementById('view-canvas');
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let grey = 0, colour = 0, n = 0;
          for (let i = 0; i < d.length; i += 16) {
            grey += (d[i] + d[i + 1] + d[i + 2]) / 3;
            colour += Math.abs(d[i] - d[i + 2]);
            n += 1;
          }
          return {grey: grey / n, colour: colour / n};
        }"""
    )


def set_range(page: Page, selector: str, value: int) -> None:
    page.eval_on_selector(
        selector,
        "(el, v) => { el.value = String(v);"
        " el.dispatchEvent(new Event('input', {bubbles: true})); }",
        value,
    )


def upload(page: Page, base: str, files: list[Path]) -> list[str]:
    """Upload `files` on the upload page; the study id of each, in order."""
    page.goto(f"{base}/upload")
    page.set_input_files("#upload-files", [str(f) for f in files])
    rows = page.locator("#upload-list tbody tr")
    expect(rows).to_have_count(len(files))
    for i in range(len(files)):
        expect(rows.nth(i)).to_have_attribute("data-state", "done")
        expect(rows.nth(i).locator("progress")).to_have_attribute("value", "100")
    return [
        rows.nth(i).locator("a[data-study-id]").get_attribute("data-study-id") or ""
        for i in range(len(files))
    ]


# ---------------------------------------------------------------- tests


def test_upload_read_review_in_browser(
    server: Running, tabs: Any, artifacts: Path, rg1_uncr: Path, nih_pngs: list[Path]
) -> None:
    base = server.url
    tab = tabs()
    page = tab.page
    log_in(page, base)
    expect(page.locator("#worklist-empty")).to_be_visible()
    expect(page.locator("#worklist-range")).to_have_text("0–0 of 0 studies")

    # upload: one request per file, each with its own progress bar and study link
    cr_id, png_id = upload(page, base, [rg1_uncr, nih_pngs[0]])
    assert cr_id and png_id and cr_id != png_id
    expect(page.locator("#upload-counts")).to_have_text("2 received")

    # the same bytes again: the earlier study, flagged as a duplicate
    page.set_input_files("#upload-files", str(rg1_uncr))
    again = page.locator("#upload-list tbody tr").nth(2)
    expect(again).to_have_attribute("data-state", "done")
    expect(again).to_contain_text("already received earlier")
    assert again.locator("a[data-study-id]").get_attribute("data-study-id") == cr_id

    # worklist: both appear and turn ready by themselves (polling, no reload)
    page.goto(f"{base}/")
    cr_row = page.locator(f'#worklist-table tr[data-study-id="{cr_id}"]')
    png_row = page.locator(f'#worklist-table tr[data-study-id="{png_id}"]')
    for row in (cr_row, png_row):
        expect(row).to_have_attribute("data-status", "ready", timeout=READY_TIMEOUT_MS)
    expect(page.locator("#worklist-table")).to_have_attribute("data-total", "2")
    cr = api(page, base, f"/api/v1/studies/{cr_id}")
    assert cr["status"] == "ready" and cr["ai"] is not None
    expect(cr_row.locator(".badge")).to_have_attribute("data-priority", cr["priority"])
    # shown by its pseudonymous instance UID, never the file name it was sent under
    expect(cr_row.locator(".col-file")).to_have_text(re.compile(r"^2\.25\.\d+\.dcm$"))
    expect(cr_row.locator(".col-finding")).to_have_text(FINDING_NAMES[cr["top_finding"]])
    expect(cr_row).to_contain_text(f"{cr['abnormal']:.2f}")
    if cr["n_warnings"]:
        expect(cr_row.locator(".warn-count")).to_have_text(f"⚠ {cr['n_warnings']}")
    # filters narrow the list and live in the address bar
    page.select_option("select[name=priority]", cr["priority"])
    expect(page).to_have_url(f"{base}/?priority={cr['priority']}")
    expect(cr_row).to_be_visible()
    page.select_option("select[name=status]", "failed")
    expect(page.locator("#worklist-table tbody tr")).to_have_count(0)
    expect(page.locator("#worklist-empty")).to_have_text("No study matches these filters.")
    page.fill("input[name=received_from]", "2999-01-01")
    expect(page).to_have_url(re.compile(r"received_from=2999-01-01"))
    expect(page.locator("#worklist-range")).to_have_text("0–0 of 0 studies")
    page.get_by_role("button", name="Clear filters").click()
    expect(page.locator("#worklist-table tbody tr")).to_have_count(2)
    expect(page).to_have_url(f"{base}/")
    page.screenshot(path=artifacts / "1-worklist.png")

    # a second tab keeps the open worklist up; the reviews must make it empty by itself
    watcher = tabs().page
    watcher.goto(f"{base}/")
    expect(watcher.locator("#worklist-table tbody tr")).to_have_count(2)
    page.bring_to_front()  # a background tab gets no animation frames: the canvas draws in them

    # viewer: click the row
    cr_row.click()
    expect(page).to_have_url(f"{base}/studies/{cr_id}")
    canvas = page.locator("#view-canvas")
    expect(canvas).to_have_attribute("data-ready", "1")
    expect(page.locator("#study-title")).to_have_text(re.compile(r"^2\.25\.\d+\.dcm$"))

    # the probability bars show the API's numbers
    bars = page.locator("#probabilities .prob")
    probabilities = cr["ai"]["probabilities"]
    expect(bars).to_have_count(len(probabilities))
    for i, finding in enumerate(FINDINGS):
        bar = bars.nth(i)
        assert bar.get_attribute("data-finding") == finding
        assert float(bar.get_attribute("data-value") or "nan") == probabilities[finding]
        expect(bar.locator(".prob-name")).to_have_text(FINDING_NAMES[finding])
        expect(bar.locator(".prob-value")).to_have_text(f"{probabilities[finding] * 100:.1f}%")
        width = bar.locator(".prob-fill").evaluate("el => el.style.width")
        assert float(width.rstrip("%")) == pytest.approx(probabilities[finding] * 100, abs=0.01)
    expect(page.locator("#ai-abnormal")).to_have_text(f"{cr['ai']['abnormal']:.2f}")
    expect(page.locator("#ai-priority .badge")).to_have_attribute("data-priority", cr["priority"])
    model = cr["ai"]["model"]
    expect(page.locator("#ai-model")).to_have_text(f"Model {model['name']} {model['version']}")
    warnings = page.locator("#warnings-list li")
    expect(warnings).to_have_count(len(cr["warnings"]))
    for i, text in enumerate(cr["warnings"]):
        expect(warnings.nth(i)).to_have_text(text)

    # window/level: the brightness slider and a shift-drag change the pixels; R resets
    plain = canvas_stats(page)
    assert plain["colour"] == 0, "the radiograph alone is grey"
    set_range(page, "#brightness", 60)
    expect(canvas).to_have_attribute("data-brightness", "60")
    brighter = canvas_stats(page)
    assert brighter["grey"] > plain["grey"] + 5
    box = canvas.bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.keyboard.down("Shift")
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 80, cy + 40, steps=4)
    page.mouse.up()
    page.keyboard.up("Shift")
    expect(canvas).to_have_attribute("data-contrast", "40")
    expect(canvas).to_have_attribute("data-brightness", "40")
    # zoom: the wheel and the + button; pan by dragging
    fit_zoom = float(canvas.get_attribute("data-zoom") or "0")
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, -300)
    page.wait_for_function(
        f"Number(document.getElementById('view-canvas').dataset.zoom) > {fit_zoom * 1.2}"
    )
    page.get_by_role("button", name="+", exact=True).click()
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 60, cy + 30, steps=3)
    page.mouse.up()
    page.keyboard.press("r")
    expect(canvas).to_have_attribute("data-brightness", "0")
    expect(canvas).to_have_attribute("data-contrast", "0")
    expect(canvas).to_have_attribute("data-zoom", f"{fit_zoom:.4f}")
    assert canvas_stats(page) == plain

    # heatmap: H lays the RGBA layer over the film; the opacity slider strengthens it
    expect(page.locator("#heatmap-toggle")).to_be_enabled()
    page.keyboard.press("h")
    expect(canvas).to_have_attribute("data-heatmap", "on")
    expect(page.locator("#heatmap-toggle")).to_be_checked()
    half = canvas_stats(page)
    assert half["colour"] > 1, half
    set_range(page, "#heatmap-opacity", 100)
    expect(canvas).to_have_attribute("data-opacity", "100")
    assert canvas_stats(page)["colour"] > half["colour"]
    set_range(page, "#heatmap-opacity", 50)
    expect(canvas).to_have_attribute("data-opacity", "50")
    page.screenshot(path=artifacts / "2-viewer-heatmap.png")
    page.locator("#heatmap-toggle").uncheck()
    expect(canvas).to_have_attribute("data-heatmap", "off")
    assert canvas_stats(page)["colour"] == 0

    # shortcuts are ignored while typing the note: "a" must not submit
    page.locator("#review-note").fill("")
    page.locator("#review-note").press_sequentially("a h")
    page.keyboard.press("Escape")
    expect(canvas).to_have_attribute("data-heatmap", "off")
    assert api(page, base, f"/api/v1/studies/{cr_id}")["review"] is None

    # A: agree, i.e. the AI's top finding as the label; saved with the note
    page.keyboard.press("a")
    expect(page.locator("#review-message")).to_contain_text("Review saved")
    top = cr["ai"]["top_finding"]
    expect(page.locator("#existing-review .reviewer")).to_have_text(USER)
    expect(page.locator("#existing-review")).to_contain_text("agreed with the AI")
    expect(page.locator("#existing-review li")).to_have_text([LABEL_NAMES[top]])
    expect(page.locator("#existing-review .review-note")).to_have_text("a h")
    review = api(page, base, f"/api/v1/studies/{cr_id}")["review"]
    assert review["labels"] == [top]
    assert review["agrees_with_ai"] is True
    assert review["note"] == "a h"
    assert review["reviewer"] == USER
    expect(page.locator("#review-submit")).to_have_text("Submit correction")
    page.screenshot(path=artifacts / "3-viewer-reviewed.png")

    # N: the next open study, as the review answer named it
    page.keyboard.press("n")
    expect(page).to_have_url(f"{base}/studies/{png_id}")
    expect(page.locator("#view-canvas")).to_have_attribute("data-ready", "1")
    expect(page.locator("#probabilities .prob")).to_have_count(4)

    # the form: labels with 1-6 (primary first), D for disagree, a note, the button
    page.keyboard.press("6")  # other abnormality
    page.keyboard.press("5")  # pneumonia, type not determined
    expect(page.locator(".label-opt.is-primary")).to_have_attribute("data-label", "other")
    page.keyboard.press("d")
    expect(page.locator('input[name=agree][value="false"]')).to_be_checked()
    page.locator("#review-note").fill("Left basal opacity; compare with prior.")
    page.get_by_role("button", name="Submit review").click()
    expect(page.locator("#review-message")).to_contain_text("open worklist is now empty")
    review = api(page, base, f"/api/v1/studies/{png_id}")["review"]
    assert review["labels"] == ["other", "pneumonia"]
    assert review["agrees_with_ai"] is False
    assert review["note"] == "Left basal opacity; compare with prior."
    expect(page.locator("#existing-review")).to_contain_text("disagreed with the AI")

    # both left the open worklist: the watching tab empties by itself
    expect(watcher.locator("#worklist-table tbody tr")).to_have_count(
        0, timeout=3 * WORKLIST_POLL_MS
    )
    expect(watcher.locator("#worklist-empty")).to_contain_text("No open studies")
    assert api(page, base, "/api/v1/worklist")["total"] == 0

    # N with an empty worklist goes back to it; reviewed ones are one toggle away
    page.keyboard.press("n")
    expect(page).to_have_url(f"{base}/")
    page.get_by_label("Show reviewed studies").check()
    expect(page).to_have_url(f"{base}/?reviewed=true")
    expect(page.locator("#worklist-title")).to_have_text("Reviewed studies")
    expect(page.locator("#worklist-table tbody tr")).to_have_count(2)
    expect(page.locator("#worklist-table .col-reviewed").nth(1)).to_be_visible()
    page.screenshot(path=artifacts / "4-worklist-reviewed.png")


def test_refused_upload_shows_the_error_and_stores_nothing(
    server: Running, tabs: Any, artifacts: Path, tmp_path: Path
) -> None:
    base = server.url
    page = tabs().page
    log_in(page, base)
    text_file = tmp_path / "notes.txt"
    text_file.write_text("Patient notes: not an X-ray at all.\n")
    page.goto(f"{base}/upload")
    page.set_input_files("#upload-files", str(text_file))
    row = page.locator('#upload-list tr[data-file="notes.txt"]')
    expect(row).to_have_attribute("data-state", "error")
    result = row.locator(".col-result")
    # the engine's own words, per file, from the 422 answer
    expect(result).to_contain_text("Refused: notes.txt: not a DICOM, PNG or JPEG file")
    expect(result).to_contain_text("looks like text")
    expect(row.locator("a")).to_have_count(0)
    # dropped on the drop zone: the same per-file answer
    page.locator("#dropzone").evaluate(
        """zone => {
          const files = new DataTransfer();
          files.items.add(new File(["MZ not a DICOM file"], "scan.dcm"));
          zone.dispatchEvent(new DragEvent("drop", {dataTransfer: files, bubbles: true}));
        }"""
    )
    dropped = page.locator('#upload-list tr[data-file="scan.dcm"]')
    expect(dropped).to_have_attribute("data-state", "error")
    expect(dropped.locator(".col-result")).to_contain_text("Refused: scan.dcm")
    expect(page.locator("#upload-counts")).to_have_text("2 refused")
    page.screenshot(path=artifacts / "5-upload-refused.png")

    page.goto(f"{base}/")
    expect(page.locator("#worklist-range")).to_have_text("0–0 of 0 studies")
    expect(page.locator("#worklist-empty")).to_be_visible()
    for reviewed in ("false", "true"):
        assert api(page, base, f"/api/v1/worklist?reviewed={reviewed}")["total"] == 0
    stored = server.settings.data_dir / "files"
    assert not stored.exists() or not any(stored.iterdir()), "a refused file was stored"


def post_file(page: Page, base: str, path: Path) -> str:
    """Upload one file through the API with the browser's cookie; its study id."""
    response = page.request.post(
        f"{base}/api/v1/studies",
        multipart={
            "files": {
                "name": path.name,
                "mimeType": "application/octet-stream",
                "buffer": path.read_bytes(),
            }
        },
    )
    assert response.status == 202, response.text()
    return str(response.json()["studies"][0]["id"])


def test_failed_and_waiting_studies_in_browser(
    serve: Callable[..., Running],
    tabs: Any,
    artifacts: Path,
    rg1_uncr: Path,
    nih_pngs: list[Path],
) -> None:
    """Without the worker running: a failed study (with its reason, Retry, a review
    without the AI) and one waiting for the AI, which the viewer shows once it is read."""
    from dxassist.store import repository

    running = serve(start_worker=False)
    base = running.url
    page = tabs().page
    log_in(page, base)
    failed_id = post_file(page, base, rg1_uncr)
    retried_id = post_file(page, base, nih_pngs[0])
    waiting_id = post_file(page, base, nih_pngs[1])
    reason = "the pixel data is truncated: 1200 of 3599155 bytes (simulated failure)"
    with running.session() as session:
        for study_id in (failed_id, retried_id):
            repository.mark_failed(session, study_id, reason)

    page.goto(f"{base}/")
    rows = page.locator("#worklist-table tbody tr")
    expect(rows).to_have_count(3)
    failed_row = page.locator(f'tr[data-study-id="{failed_id}"]')
    expect(failed_row).to_have_attribute("data-status", "failed")
    expect(failed_row).to_have_class(re.compile(r"\brow-failed\b"))
    expect(failed_row.locator(".failure-reason")).to_have_text(reason)
    expect(failed_row.get_by_role("button", name="Retry")).to_be_visible()
    waiting_row = page.locator(f'tr[data-study-id="{waiting_id}"]')
    expect(waiting_row.locator(".status")).to_have_text("Waiting for AI")
    expect(waiting_row.locator(".badge")).to_have_attribute("data-priority", "none")
    expect(waiting_row.locator(".badge")).to_have_text("Not read")
    page.screenshot(path=artifacts / "6-worklist-failed.png")

    # Retry queues the study again (the row does not open the viewer)
    retried_row = page.locator(f'tr[data-study-id="{retried_id}"]')
    retried_row.get_by_role("button", name="Retry").click()
    expect(retried_row).to_have_attribute("data-status", "received")
    expect(page).to_have_url(f"{base}/")
    assert api(page, base, f"/api/v1/studies/{retried_id}")["status"] == "received"

    # a failed study: the reason, no AI read to agree with, a review all the same
    failed_row.click()
    expect(page).to_have_url(f"{base}/studies/{failed_id}")
    expect(page.locator("#view-canvas")).to_have_attribute("data-ready", "1")
    expect(page.locator("#ai-status")).to_contain_text("The AI analysis failed.")
    expect(page.locator("#ai-status .failure-reason")).to_have_text(reason)
    expect(page.locator("#ai-read")).to_be_hidden()
    expect(page.locator("#agree-field")).to_be_hidden()
    expect(page.locator("#heatmap-toggle")).to_be_disabled()
    page.keyboard.press("a")
    expect(page.locator("#review-message")).to_contain_text("no AI read to agree with")
    page.keyboard.press("1")
    page.keyboard.press("6")  # "other" replaces "normal": normal excludes findings
    expect(page.locator(".label-opt input:checked")).to_have_count(1)
    page.get_by_role("button", name="Submit review").click()
    expect(page.locator("#review-message")).to_contain_text("Review saved")
    expect(page.locator("#existing-review")).to_contain_text("read without the AI")
    expect(page.locator("#existing-review .review-note")).to_have_count(0)
    review = api(page, base, f"/api/v1/studies/{failed_id}")["review"]
    assert review["labels"] == ["other"]
    page.screenshot(path=artifacts / "7-viewer-failed-reviewed.png")

    # a study still waiting: said so, no review yet; it fills in once the AI has read it
    page.goto(f"{base}/studies/{waiting_id}")
    expect(page.locator("#view-canvas")).to_have_attribute("data-ready", "1")
    expect(page.locator("#ai-status")).to_contain_text("Not read yet")
    expect(page.locator("#review-submit")).to_be_disabled()
    page.keyboard.press("h")
    expect(page.locator("#review-message")).to_contain_text("No heatmap")
    running.worker.start()
    running.worker.wake()
    expect(page.locator("#ai-read")).to_be_visible(timeout=READY_TIMEOUT_MS)
    expect(page.locator("#ai-status")).to_be_hidden()
    expect(page.locator("#probabilities .prob")).to_have_count(4)
    expect(page.locator("#review-submit")).to_be_enabled()
    expect(page.locator("#heatmap-toggle")).to_be_enabled()
    page.keyboard.press("h")
    expect(page.locator("#view-canvas")).to_have_attribute("data-heatmap", "on")
    study = api(page, base, f"/api/v1/studies/{waiting_id}")
    expect(page.locator("#ai-abnormal")).to_have_text(f"{study['ai']['abnormal']:.2f}")
