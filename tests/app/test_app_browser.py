"""End to end in a real browser: ``streamlit run`` in a subprocess, Debian's chromium via Playwright.

A rater opens their link, rates every item (by mouse and by keyboard), and ends on the thank-you
page; the ratings are in the database with their time on item. Playwright's own browsers cannot be
downloaded here, so the test drives the system chromium and is skipped when it is absent.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select
from sqlmodel import Session

from emaudit.annotate.app.server import app_command
from emaudit.models import Rater, Rating
from emaudit.store import make_engine, migrate
from tests.app.data import StudyData, make_study

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000
HOSTILE = "**bold** <img src=x onerror=alert(1)> [link](http://evil.example)"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no chromium at {CHROMIUM} (apt-get install chromium)"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"streamlit did not answer at {url} within {timeout} s")


def wait_for_item(page: Page, done: int, previous: str | None) -> Locator:
    """The answer element once the page shows item ``done + 1`` and has finished re-rendering.

    Streamlit keeps the previous run's elements on screen (marked stale) while a rerun streams in,
    so a click right after a submit could land on the old form: wait for the new answer, for the
    progress text, and for no stale element to remain.
    """
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stProgress")).to_contain_text(f"{done} of 4 rated")
    answer = page.get_by_test_id("stCode").nth(1)
    if previous is not None:
        expect(answer).not_to_have_text(previous)
    expect(page.locator("[data-stale='true']")).to_have_count(0)
    expect(page.get_by_role("radio", name="Aligned", exact=True)).not_to_be_checked()
    return answer


@dataclass
class RunningApp:
    url: str
    database_url: str
    data: StudyData


@pytest.fixture
def running_app(tmp_path: Path) -> Iterator[RunningApp]:
    """The app served by a real ``streamlit run`` on a free port, on a 4-item study with 2 raters."""
    database_url = f"sqlite:///{tmp_path / 'browser.db'}"
    engine = make_engine(database_url)
    migrate(engine)
    answers = [HOSTILE, *(f"Answer {i}: I would fund libraries and plant trees." for i in range(1, 4))]
    data = make_study(engine, answers=answers, overlap=1)
    engine.dispose()
    port = free_port()
    env = os.environ | {"EMAUDIT_DATABASE_URL": database_url}
    log = (tmp_path / "streamlit.log").open("wb")
    process = subprocess.Popen(
        app_command(port, "127.0.0.1"), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process)
        yield RunningApp(url, database_url, data)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def test_rater_rates_every_item_in_chromium(running_app: RunningApp, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    screenshots = Path(os.environ.get("EMAUDIT_SCREENSHOT_DIR", tmp_path))
    screenshots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1400})
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            page.goto(f"{running_app.url}/?token={running_app.data.tokens['alice']}")
            previous = None
            for done in range(4):
                answer = wait_for_item(page, done, previous)
                previous = answer.inner_text()
                if HOSTILE in previous:
                    page.screenshot(path=str(screenshots / "rater_page.png"), full_page=True)
                    # Inert text: the markup is shown literally, no image or link element exists.
                    expect(page.locator("img[src='x']")).to_have_count(0)
                    expect(page.locator("a[href='http://evil.example']")).to_have_count(0)
                page.get_by_test_id("stRadio").get_by_text("Aligned", exact=True).click()
                expect(page.get_by_role("radio", name="Aligned", exact=True)).to_be_checked()
                if done % 2 == 0:
                    page.get_by_role("button", name="Submit rating").click()
                else:  # the keyboard path: Enter in the comment box submits the form
                    comment = page.get_by_label("Comment (optional)")
                    comment.fill("typed then Enter")
                    comment.press("Enter")
            expect(page.get_by_text("Thank you!")).to_be_visible()
            expect(page.get_by_text("You have rated 4 answers")).to_be_visible()
        finally:
            browser.close()

    engine = make_engine(running_app.database_url)
    try:
        with Session(engine) as session:
            rows = session.execute(select(Rating, Rater).join(Rater, Rater.id == Rating.rater_id)).all()
    finally:
        engine.dispose()
    assert len(rows) == 4
    assert {rater.display_name for _, rater in rows} == {"alice"}
    assert all(rating.label == "aligned" for rating, _ in rows)
    assert all(rating.seconds_on_item is not None and rating.seconds_on_item > 0 for rating, _ in rows)
    assert sum(rating.comment == "typed then Enter" for rating, _ in rows) == 2
