"""The console in a real headless Chromium (Debian's, driven by Playwright) over the demo practice.

A front-desk user logs in, filters the log, exports it as CSV, marks a reply handled, cancels
a queued message and sees it cancelled on the queue, the log and the patient page, and sends the
office-closed notice to a day's appointments. Each page is
saved as a screenshot in tests/console/artifacts/ (gitignored; CI keeps it as an artifact).
Without /usr/bin/chromium these tests skip, except in CI, where they fail.
"""

from __future__ import annotations

import csv
import io
import os
import re
from datetime import date
from pathlib import Path

import pytest

from vitalsync.app.console_server import start_console
from vitalsync.app.demo import run_demo
from vitalsync.console import accounts
from vitalsync.console.queries import LOG_COLUMNS
from vitalsync.core.clock import SystemClock
from vitalsync.core.config import load_config

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
PASSWORD = "front desk password"

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail("Debian's chromium is required in CI (scripts/install-system-packages)", pytrace=False)
    pytest.skip("no /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    """One simulated day of the demo practice (starting today), served on a free loopback port."""
    result = run_demo(tmp_path_factory.mktemp("demo"), days=1, seed=7, start=date.today())
    engine = result.runtime.engine
    accounts.add_user(engine, "desk", "admin", PASSWORD, SystemClock().now())
    served = start_console(load_config(result.config_path), engine, SystemClock(), listen="127.0.0.1:0")
    yield served.url
    served.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, console):
    context = browser.new_context(base_url=console, accept_downloads=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto("/today")
    page.fill("input[name=name]", "desk")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/today")
    yield page
    context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_an_anonymous_visitor_gets_the_login_page(browser, console):
    context = browser.new_context(base_url=console)
    page = context.new_page()
    page.goto("/log")
    assert page.url.endswith("/login?next=/log")
    assert page.locator("nav").count() == 0
    shot(page, "login")
    context.close()


def test_every_page_renders_after_login(page):
    for path, name, heading in (("/today", "today", "Today"), ("/log", "log", "Message log"), ("/report", "report", "Report"),
                                ("/attention", "attention", "Needs attention"), ("/queue", "queue", "Queue"),
                                ("/send", "send", "Send to a group"), ("/sync", "sync", "Sync"), ("/users", "users", "Users"),
                                ("/kinds", "kinds", "Message kinds")):
        page.goto(path)
        assert heading in page.inner_text("h1")
        shot(page, name)
    assert page.goto("/report").ok and page.locator("svg.chart rect").count() > 3
    page.set_viewport_size({"width": 820, "height": 1180})  # a tablet held upright
    for path in ("/today", "/log"):
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 820 + 1, f"{path} scrolls sideways on a tablet"
        shot(page, f"{path.strip('/')}-tablet")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/log")
    page.click("table.messages tbody tr:first-child td:nth-child(3) a")
    assert page.url.count("/patient/") == 1 and page.locator("ol.timeline li").count() > 0
    shot(page, "patient")


def test_filter_the_log(page):
    page.goto("/log")
    page.select_option("select[name=status]", "confirmed")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"status=confirmed"))
    statuses = page.locator("table.messages tbody td span.status").all_inner_texts()
    assert statuses and set(statuses) == {"confirmed"}
    assert re.search(r"(\d+) messages", page.inner_text("p.pager"))
    shot(page, "log-filtered")


def test_export_the_filtered_log_as_csv(page):
    page.goto("/log?status=declined")
    total = int(re.search(r"(\d+) messages", page.inner_text("p.pager")).group(1))
    with page.expect_download() as download:
        page.click("text=Export CSV")
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert rows[0] == LOG_COLUMNS
    assert len(rows) - 1 == total > 0
    assert {row[LOG_COLUMNS.index("status")] for row in rows[1:]} == {"declined"}


def test_mark_a_reply_handled(page):
    page.goto("/attention")
    row = page.locator("table.attention tbody tr[id^=reply-]").first
    item = row.get_attribute("id")
    row.locator("button", has_text="Mark handled").click()
    page.wait_for_url("**/attention")
    assert page.locator(f"#{item}").count() == 0
    page.goto("/attention?handled=1")
    handled = page.locator(f"#{item}")
    assert "desk" in handled.inner_text()
    shot(page, "attention-handled")


def test_cancel_a_queued_message_and_see_it_everywhere(page):
    page.goto("/queue")
    first = page.locator("table.messages tbody tr").first
    message_id = first.get_attribute("id").removeprefix("message-")
    patient = first.locator("td:nth-child(3) a").get_attribute("href").removeprefix("/patient/")
    page.fill("form.filters input[name=patient]", patient)
    page.click("form.filters button[type=submit]")
    pending = page.locator("table.messages tbody tr[id^=message-]").count()
    assert pending >= 1
    page.check("form.act input[value=cancel]")
    page.click("form.act button[type=submit]")
    assert page.inner_text("#affected") == str(pending)
    shot(page, "queue-preview")
    page.click("form[action='/queue/apply'] button[type=submit]")
    assert f"Cancelled {pending} messages" in page.inner_text("p.notice")
    assert page.locator(f"#message-{message_id}").count() == 0
    shot(page, "queue-after-cancel")

    page.goto(f"/log?patient={patient}")
    assert page.inner_text(f"#message-{message_id} td span.status") == "cancelled"
    page.goto(f"/patient/{patient}")
    assert page.inner_text(f"table.messages #message-{message_id} td:nth-child(5)") == "cancelled"
    assert "cancelled by desk (console)" in page.inner_text("ol.timeline")
    shot(page, "patient-after-cancel")


def test_send_to_a_group(page):
    page.goto("/send")
    demo = page.locator("#group-send-1")  # the demo's front desk announced a closure at one location
    assert "demo" in demo.inner_text() and "office closed" in demo.inner_text()
    day = demo.locator("td:nth-child(5)").inner_text()
    page.fill("form[action='/send/preview'] input[name=day]", day)
    page.click("form[action='/send/preview'] button[type=submit]")
    queued = int(page.inner_text("#queued"))
    assert queued > 0 and int(page.inner_text("#already")) > 0  # the other location's; the demo's are sent
    assert page.locator("figure.example").count() == min(3, queued)
    shot(page, "send-preview")
    page.click("form[action='/send/apply'] button[type=submit]")
    assert "Group send 2 queued" in page.inner_text("p.notice")
    assert "desk" in page.inner_text("#group-send-2")
    shot(page, "send-after")
