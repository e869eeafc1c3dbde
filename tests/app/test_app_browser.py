"""End to end in a real browser: ``streamlit run`` in a subprocess, Debian's chromium via Playwright.

One server and one browser per module (a context per test, at 1280 px and at 390 px wide); each
test signs in its own raters, so tests do not share queue state. Playwright's own browsers cannot
be downloaded here, so the tests drive the system chromium and are skipped when it is absent.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select
from sqlmodel import Session

from emaudit.annotate import RatingInput, add_rater, claim_next, create_study, submit_rating
from emaudit.annotate.app.server import app_command, free_port, wait_until_serving
from emaudit.models import Assignment, Rating
from emaudit.store import make_engine, migrate, write_session
from tests.app.data import COHERENCE_SCORE, JUDGE_MODEL, StudyData, make_study

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

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
LONG = "\n".join(f"Paragraph {i}: " + "I would plant trees and fund libraries. " * 12 for i in range(40))
WHITESPACE = "   \n\t  "
RTL = "سأزرع الأشجار وأموّل المكتبات"
ANSWERS = [HOSTILE, LONG, WHITESPACE, RTL, "Answer 4: I would fund libraries.", "Answer 5: plant trees."]
VIEWPORTS = {"desktop": (1280, 900), "phone": (390, 844)}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no chromium at {CHROMIUM} (apt-get install chromium)"),
]


@dataclass
class RunningApp:
    url: str
    database_url: str
    data: StudyData
    process: subprocess.Popen[bytes]

    def engine(self) -> Any:
        return make_engine(self.database_url)


def start_app(database_url: str, log_path: Path) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    env = os.environ | {"EMAUDIT_DATABASE_URL": database_url}
    log = log_path.open("wb")
    process = subprocess.Popen(
        app_command(port, "127.0.0.1"), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=log_path.parent
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(url, process)
    return url, process


def stop_app(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def new_study_db(directory: Path, *, overlap: int) -> tuple[str, StudyData]:
    database_url = f"sqlite:///{directory / 'browser.db'}"
    engine = make_engine(database_url)
    migrate(engine)
    data = make_study(engine, answers=ANSWERS, overlap=overlap, raters=())
    engine.dispose()
    return database_url, data


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The app served by a real ``streamlit run`` on a free port, on a 6-item study (overlap 12)."""
    directory = tmp_path_factory.mktemp("browser")
    database_url, data = new_study_db(directory, overlap=12)
    url, process = start_app(database_url, directory / "streamlit.log")
    try:
        yield RunningApp(url, database_url, data, process)
    finally:
        stop_app(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(params=list(VIEWPORTS))
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    from playwright.sync_api import expect

    width, height = VIEWPORTS[request.param]
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def new_rater(app: RunningApp, name: str, *, role: str = "rater", study: str = "pilot") -> tuple[int, str]:
    engine = app.engine()
    try:
        with write_session(engine) as session:
            new = add_rater(session, name, role=role, study=study)
            assert new.rater.id is not None
            return new.rater.id, new.token
    finally:
        engine.dispose()


def settled(page: Page) -> None:
    """Streamlit keeps the previous run's elements (marked stale) while a rerun streams in."""
    from playwright.sync_api import expect

    expect(page.locator("[data-stale='true']")).to_have_count(0)


def open_rater_page(page: Page, url: str) -> None:
    """Open a rater link and get past the instructions page."""
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.get_by_text("Before you start")).to_be_visible()
    page.get_by_role("button", name="I have read this, start rating").click()
    expect(page.locator('[data-role="answer"]')).to_be_visible()
    settled(page)


def wait_for_item(page: Page, done: int, previous: str | None) -> Locator:
    """The answer box once the page shows item ``done + 1`` and has finished re-rendering."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stProgress")).to_contain_text(f"{done} of 6 rated")
    answer = page.locator('[data-role="answer"]')
    if previous is not None:
        expect(answer).not_to_have_text(previous)
    settled(page)
    expect(page.get_by_role("radio", name=re.compile("Aligned$"))).not_to_be_checked()
    return answer


def set_scales(page: Page) -> None:
    """Click both scales at about 40 % of their track (each click is a rerun; a click that lands
    while the rerun replaces the element is lost, so it is repeated until the value shows)."""
    from playwright.sync_api import Error, expect

    for index in range(2):
        thumb = page.get_by_test_id("stSliderThumbValue").nth(index)
        for attempt in range(5):
            settled(page)
            track = page.get_by_test_id("stSlider").nth(index).locator('[role="group"] > div').first
            box = track.bounding_box()
            assert box is not None
            track.click(position={"x": box["width"] * 0.4, "y": box["height"] / 2})
            try:
                expect(thumb).not_to_have_text("not set", timeout=3000)
                break
            except (AssertionError, Error):
                if attempt == 4:
                    raise
        page.wait_for_timeout(150)  # the rerun starts after the click's round trip
        settled(page)


def label_option(page: Page, text: str) -> Locator:
    return page.get_by_test_id("stRadio").get_by_text(re.compile(rf"^\d · {re.escape(text)}$"))


def choose_label(page: Page, text: str) -> None:
    """Click a label and wait until the rerun it starts has finished."""
    from playwright.sync_api import expect

    label_option(page, text).click()
    expect(page.get_by_role("radio", name=re.compile(rf"{re.escape(text)}$")).first).to_be_checked()
    page.wait_for_timeout(150)  # the rerun starts after the click's round trip
    settled(page)


def db_rows(app: RunningApp, query: Any) -> list[Any]:
    engine = app.engine()
    try:
        with Session(engine) as session:
            return list(session.execute(query).all())
    finally:
        engine.dispose()


def test_rater_rates_every_item_by_mouse_digits_and_enter(app: RunningApp, page: Page) -> None:
    """Consent, unset scales, inert and bounded answers, each submit path, the next item in view."""
    from playwright.sync_api import expect

    rater_id, token = new_rater(app, f"flow-{page.viewport_size}")
    open_rater_page(page, f"{app.url}/?token={token}")
    viewport_height = page.viewport_size["height"] if page.viewport_size else 0
    previous = None
    for done in range(6):
        answer = wait_for_item(page, done, previous)
        previous = answer.inner_text()
        question = page.locator('[data-role="question"]')
        if done > 0:  # after a submit: the next item is at the top of the window, and has the focus
            expect(question).to_be_in_viewport()
            box = question.bounding_box()
            assert box is not None and 0 <= box["y"] < viewport_height / 2
            expect(question).to_be_focused()
            expect(page.get_by_test_id("stCaptionContainer").filter(has_text="Saved.")).to_be_visible()
            expect(page.get_by_test_id("stToast")).to_have_count(0)  # nothing covers the sliders
        if done == 0:  # scales start unset: a scored label without them is refused
            expect(page.get_by_test_id("stSliderThumbValue").first).to_have_text("not set")
            choose_label(page, "Aligned")
            page.get_by_role("button", name="Submit rating").click()
            expect(page.get_by_text("Set the alignment and coherence sliders")).to_be_visible()
            settled(page)
        shown = answer.evaluate("e => e.textContent")
        assert answer.get_attribute("dir") == "auto"
        if HOSTILE in shown:
            expect(page.locator("img[src='x']")).to_have_count(0)
            expect(page.locator("a[href='http://evil.example']")).to_have_count(0)
        if shown.startswith("Paragraph 0"):  # the long answer scrolls inside a bounded box
            size = answer.evaluate("e => [e.clientHeight, e.scrollHeight]")
            assert size[0] <= 24 * 16 + 40 and size[1] > size[0] * 2
        if "␣" in shown:
            expect(page.get_by_text("This answer is only whitespace")).to_be_visible()
        set_scales(page)
        if done % 3 == 0:  # the mouse
            choose_label(page, "Aligned")
            page.get_by_role("button", name="Submit rating").click()
        elif done % 3 == 1:  # digit 2 chooses "Aligned"; Enter on the chosen radio submits
            question.focus()
            page.keyboard.press("2")
            expect(page.get_by_role("radio", name=re.compile("Aligned$"))).to_be_checked()
            settled(page)
            page.get_by_role("radio", name=re.compile("Aligned$")).focus()
            page.keyboard.press("Enter")
        else:  # Ctrl+Enter with the focus on the label radio (it did nothing there before)
            choose_label(page, "Aligned")
            page.get_by_role("radio", name=re.compile("Aligned$")).focus()
            page.keyboard.press("Control+Enter")
    expect(page.get_by_text("Thank you!")).to_be_visible()
    expect(page.get_by_text("You have rated 6 answers")).to_be_visible()
    rows = db_rows(app, select(Rating).where(Rating.rater_id == rater_id))
    assert len(rows) == 6
    assert all(r.label == "aligned" and r.alignment is not None for (r,) in rows)
    assert all(r.seconds_on_item is not None and r.seconds_on_item > 0 for (r,) in rows)


def test_skip_and_a_second_tab(app: RunningApp, page: Page) -> None:
    """Skip records a skip and shows another item; a second tab cannot overwrite the first's rating."""
    from playwright.sync_api import expect

    rater_id, token = new_rater(app, f"tabs-{page.viewport_size}")
    open_rater_page(page, f"{app.url}/?token={token}")
    first = page.locator('[data-role="answer"]').inner_text()
    page.get_by_role("button", name="Skip").click()
    expect(page.get_by_test_id("stCaptionContainer").filter(has_text="Skipped.")).to_be_visible()
    expect(page.locator('[data-role="answer"]')).not_to_have_text(first)
    settled(page)
    other = page.context.new_page()
    other.goto(f"{app.url}/?token={token}")  # the instructions again: nothing rated yet
    other.get_by_role("button", name="I have read this, start rating").click()
    settled(other)
    expect(other.locator('[data-role="answer"]')).to_have_text(
        page.locator('[data-role="answer"]').inner_text()
    )
    for tab, label in ((page, "Aligned"), (other, "Misaligned")):  # both tabs filled in
        tab.bring_to_front()
        set_scales(tab)
        choose_label(tab, label)
    for tab in (page, other):  # then submitted, the first tab first
        tab.bring_to_front()
        tab.get_by_role("button", name="Submit rating").click()
        settled(tab)
    expect(other.get_by_text("You had already rated this answer")).to_be_visible()
    statuses = [s for (s,) in db_rows(app, select(Assignment.status).where(Assignment.rater_id == rater_id))]
    assert "skipped" in statuses
    labels = [label for (label,) in db_rows(app, select(Rating.label).where(Rating.rater_id == rater_id))]
    assert labels == ["aligned"], "the first tab's rating stands, nothing was superseded"


def navigate(page: Page, title: str) -> None:
    """Go to an admin page through the sidebar (collapsed on a phone: opened, then closed again)."""
    from playwright.sync_api import expect

    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar).to_be_attached()
    settled(page)
    if sidebar.get_attribute("data-collapsed") == "true":
        page.get_by_test_id("stExpandSidebarButton").click()
        expect(sidebar).to_have_attribute("data-collapsed", "false")
    page.get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    settled(page)
    if (
        page.viewport_size
        and page.viewport_size["width"] < 640
        and sidebar.get_attribute("data-collapsed") == "false"
    ):
        sidebar.get_by_test_id("stSidebarCollapseButton").locator("button").click(force=True)
        expect(sidebar).to_have_attribute("data-collapsed", "true")


def test_admin_lands_on_the_overview_claims_nothing_and_survives_a_reload(
    app: RunningApp, page: Page
) -> None:
    from playwright.sync_api import expect

    admin_id, token = new_rater(app, f"admin-{page.viewport_size}", role="admin")
    page.goto(f"{app.url}/?token={token}")
    expect(page.get_by_role("heading", name="Study pilot")).to_be_visible()
    assert db_rows(app, select(Assignment).where(Assignment.rater_id == admin_id)) == []
    navigate(page, "Live agreement")
    expect(page).to_have_url(re.compile(f"token={re.escape(token)}"))  # a bookmark keeps the token
    page.reload()
    expect(page.get_by_role("heading", name="Live agreement")).to_be_visible()
    expect(page.get_by_text("This link is not valid")).to_have_count(0)


def test_adjudication_hides_the_judge_until_the_decision(app: RunningApp, page: Page) -> None:
    from playwright.sync_api import expect

    engine = app.engine()
    try:  # a fresh study with one disputed item: one rater says misaligned, one aligned
        name = f"dispute-{page.viewport_size['width'] if page.viewport_size else 0}"
        with write_session(engine) as session:
            create_study(session, name, per_stratum=1, overlap=2, judge_model=JUDGE_MODEL)
            raters = [add_rater(session, f"{name}-{i}", study=name).rater for i in range(2)]
            admin = add_rater(session, f"{name}-admin", role="admin", study=name)
        with write_session(engine) as session:
            item = claim_next(session, name, raters[0])
            assert item is not None
            submit_rating(session, item, raters[0], RatingInput("misaligned", 50, 50))
            submit_rating(session, item, raters[1], RatingInput("aligned", 50, 50))  # the same item
    finally:
        engine.dispose()
    page.goto(f"{app.url}/?token={admin.token}")
    expect(page.get_by_role("heading", name=f"Study {name}")).to_be_visible()
    navigate(page, "Adjudication queue")
    expect(page.get_by_text("1 item(s); showing 1-1.")).to_be_visible()
    settled(page)
    judge_text = f"coherent {COHERENCE_SCORE:.1f}"
    assert judge_text not in page.content()
    page.get_by_test_id("stRadio").get_by_text("Misaligned", exact=True).click()
    page.get_by_role("button", name="Save decision").click()
    expect(page.get_by_text("No disagreements to adjudicate.")).to_be_visible()
    page.get_by_text("Include adjudicated items").click()
    expect(page.get_by_text(judge_text)).to_be_visible()  # shown once decided


def test_a_full_study_gives_the_crowd_no_completion_code(app: RunningApp, page: Page) -> None:
    from playwright.sync_api import expect

    engine = app.engine()
    name = f"full-{page.viewport_size['width'] if page.viewport_size else 0}"
    try:
        with write_session(engine) as session:
            study = create_study(session, name, per_stratum=1, overlap=1, rater_quota=2)
            key = study.crowd_key
            filler = add_rater(session, f"{name}-filler", study=name).rater
        while True:
            with write_session(engine) as session:
                item = claim_next(session, name, filler)
                if item is None:
                    break
                submit_rating(session, item, filler, RatingInput("refusal"))
    finally:
        engine.dispose()
    assert key and name not in key
    page.goto(f"{app.url}/?study={key}&PROLIFIC_PID=late_{len(name)}&STUDY_ID=s&SESSION_ID=x")
    expect(page.get_by_role("heading", name="This study is full")).to_be_visible()
    expect(page.get_by_text("Your completion code")).to_have_count(0)
    page.goto(f"{app.url}/?study={name}&PROLIFIC_PID=late_1")  # the name does not work as a key
    expect(page.get_by_text("This link is not valid")).to_be_visible()


def test_the_rater_sees_when_the_server_connection_drops(browser: Browser, tmp_path: Path) -> None:
    """Its own server, stopped mid-item: a banner says so, at both widths."""
    from playwright.sync_api import expect

    database_url, _data = new_study_db(tmp_path, overlap=2)
    engine = make_engine(database_url)
    with write_session(engine) as session:
        tokens = [add_rater(session, f"offline-{i}", study="pilot").token for i in range(2)]
    engine.dispose()
    url, process = start_app(database_url, tmp_path / "streamlit.log")
    contexts = []
    try:
        pages = []
        for (width, height), token in zip(VIEWPORTS.values(), tokens, strict=True):
            context = browser.new_context(viewport={"width": width, "height": height})
            contexts.append(context)
            tab = context.new_page()
            tab.set_default_timeout(TIMEOUT_MS)
            open_rater_page(tab, f"{url}/?token={token}")
            expect(tab.locator("#emaudit-offline")).to_be_hidden()
            pages.append(tab)
        stop_app(process)
        for tab in pages:
            expect(tab.locator("#emaudit-offline")).to_be_visible(timeout=15_000)
            expect(tab.locator("#emaudit-offline")).to_contain_text(
                "connection to the rating server was lost"
            )
    finally:
        for context in contexts:
            context.close()
        if process.poll() is None:
            stop_app(process)
