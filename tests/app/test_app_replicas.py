"""Two ``streamlit run`` replicas on one PostgreSQL store, raters split between them (sticky sessions).

Three raters rate a 4-item study (overlap 2) in chromium, split over the two replicas, while a fourth
opens an item on the second replica and closes the tab: its lease (20 s) expires and the item is
re-served through either replica. The soak invariants must hold: every acknowledged submit stored, no rater
rates an item twice, every item ends with exactly K ratings, and the counters agree.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select, update
from sqlmodel import Session

from emaudit.annotate import add_rater
from emaudit.models import Assignment, Rating, Study, StudyItem
from emaudit.store import make_engine, migrate, write_session
from tests.app.data import make_study
from tests.app.test_app_browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, settled, start_app, stop_app
from tests.conftest import requires_postgres

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no chromium at {CHROMIUM}"),
]

ITEMS, OVERLAP = 4, 2


def _rate_one(page: Page) -> bool:
    """Rate the item on screen (Refusal); True when the app said "Saved." (an acknowledged submit).

    False when there is nothing to rate, or when the rater's lease ran out and the item went to
    someone else meanwhile (the app then says so, or moves on).
    """
    from playwright.sync_api import Error, expect

    start = page.get_by_role("button", name="I have read this, start rating")
    answer = page.locator('[data-role="answer"]')
    done = page.get_by_role("heading", name="Thank you!")
    # .first: during a rerun the old page and the new one can both be on screen for a moment
    expect(answer.or_(done).or_(start).first).to_be_visible()
    if start.count():  # a reload before the rater's first rating shows the instructions again
        start.click()
        expect(answer.or_(done).first).to_be_visible()
    settled(page)
    if done.count():
        return False
    try:
        page.get_by_test_id("stRadio").get_by_text("3 · Refusal").click(timeout=5_000)
        expect(page.get_by_role("radio", name="3 · Refusal")).to_be_checked(timeout=5_000)
        page.wait_for_timeout(150)
        settled(page)
        page.get_by_role("button", name="Submit rating").click(timeout=5_000)
    except (AssertionError, Error):
        if done.count():  # the lease expired while the rater was away, and nothing is left
            return False
        raise
    saved = page.get_by_test_id("stCaptionContainer").filter(has_text="Saved.")
    refused = page.get_by_test_id("stAlert")
    expect(saved.or_(refused).first).to_be_visible()
    return bool(saved.count())


@requires_postgres
def test_two_replicas_on_one_postgresql_store_keep_the_soak_invariants(
    postgres_url: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    engine = make_engine(postgres_url)
    migrate(engine)
    answers = [f"Answer {i}: I would fund libraries." for i in range(ITEMS)]
    make_study(engine, answers=answers, overlap=OVERLAP, raters=())
    with write_session(engine) as session:
        session.execute(update(Study).values(lease_seconds=20))
        tokens = [add_rater(session, f"replica-{i}", study="pilot").token for i in range(4)]
    servers = [start_app(postgres_url, tmp_path / f"replica{i}.log") for i in range(2)]
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            expect.set_options(timeout=TIMEOUT_MS)
            pages = []
            for i, token in enumerate(tokens):
                page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                page.set_default_timeout(TIMEOUT_MS)
                page.goto(f"{servers[i % 2][0]}/?token={token}")  # sticky: rater i on replica i mod 2
                page.get_by_role("button", name="I have read this, start rating").click()
                expect(page.locator('[data-role="answer"]')).to_be_visible()
                pages.append(page)
            pages.pop().context.close()  # the fourth rater walks away from a leased item
            acknowledged = 0
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                progressed = False
                for page in pages:
                    if _rate_one(page):
                        acknowledged += 1
                        progressed = True
                with Session(engine) as session:
                    remaining = session.execute(
                        select(StudyItem.id).where(StudyItem.n_completed < OVERLAP)
                    ).first()
                if remaining is None:
                    break
                if not progressed:  # everyone is told "nothing left" while the lease runs: come back
                    time.sleep(1)
                    for page in pages:
                        page.reload()
            browser.close()
    finally:
        for _, process in servers:
            stop_app(process)
    with Session(engine) as session:
        rows = session.execute(select(Rating.item_id, Rating.rater_id)).all()
        counters = set(session.execute(select(StudyItem.n_completed, StudyItem.n_claimed)).all())
        expired = session.execute(select(Assignment).where(Assignment.status == "expired")).all()
    engine.dispose()
    assert acknowledged == len(rows) == ITEMS * OVERLAP, "every acknowledged submit is stored, nothing else"
    assert max(Counter(rows).values()) == 1, "no rater rated an item twice"
    assert set(Counter(item for item, _ in rows).values()) == {OVERLAP}, "every item has exactly K"
    assert counters == {(OVERLAP, 0)}
    assert len(expired) == 1, "the abandoned lease expired and its item was re-served"
