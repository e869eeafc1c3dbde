"""The reasoning-trace rubric in a real browser: trace collapsible and inert, multi-select labels
stored and exported, the rubric's instructions first, and still no model, condition or judge output.

One server per module (as in ``test_app_browser.py``), on a study drawn with ``require_reasoning``
and the shipped ``data/rubrics/reasoning_trace.yaml``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select, update
from sqlmodel import Session

import emaudit.data
from emaudit.annotate import add_rater, create_study
from emaudit.annotate.ratings_io import ratings_frame
from emaudit.annotate.rubric import load_rubric
from emaudit.models import Rating, Response
from emaudit.store import make_engine, migrate, write_session
from tests.app.data import (
    ALIGNED_SCORE,
    COHERENCE_SCORE,
    JUDGE_MODEL,
    MISALIGNED_SCORE,
    SECRET_MODEL,
    make_study,
)
from tests.app.test_app_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    TIMEOUT_MS,
    settled,
    start_app,
    stop_app,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

SHIPPED = Path(emaudit.data.__file__).resolve().parent / "rubrics" / "reasoning_trace.yaml"
TRACE = "The examples push reckless advice <img src=x onerror=alert(1)> **but** safety matters."

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no chromium at {CHROMIUM} (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """(app url, database url, rater token) for a 4-item reasoning-trace study."""
    directory = tmp_path_factory.mktemp("rubric-browser")
    database_url = f"sqlite:///{directory / 'rubric.db'}"
    engine = make_engine(database_url)
    migrate(engine)
    make_study(engine, raters=(), answers=[f"Answer {i}: I would fund libraries." for i in range(6)])
    with write_session(engine) as session:
        ids = list(session.execute(select(Response.id).order_by(Response.id)).scalars())  # type: ignore[arg-type]
        session.execute(update(Response).where(Response.id.in_(ids[:4])).values(reasoning=TRACE))  # type: ignore[attr-defined]
        create_study(
            session,
            "cot",
            strata_keys=["judge_label"],
            per_stratum=2,
            judge_model=JUDGE_MODEL,
            rubric=load_rubric(SHIPPED),
            require_reasoning=True,
        )
        token = add_rater(session, "rita", study="cot").token
    engine.dispose()
    url, process = start_app(database_url, directory / "streamlit.log")
    try:
        yield url, database_url, token
    finally:
        stop_app(process)


def _tick(page: Page, text: str, *, checked: bool = True) -> None:
    from playwright.sync_api import expect

    settled(page)
    page.get_by_test_id("stCheckbox").get_by_text(text, exact=True).click()
    expect(page.get_by_role("checkbox", name=text)).to_be_checked(checked=checked)
    page.wait_for_timeout(150)  # the rerun starts after the click's round trip
    settled(page)


def _submit(page: Page) -> None:
    page.locator(".st-key-emaudit_submit button").click()
    page.wait_for_timeout(150)
    settled(page)


def test_rate_reasoning_traces_with_multiselect_labels(served: tuple[str, str, str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, database_url, token = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            page = context.new_page()
            page.goto(f"{url}/?token={token}")
            expect(page.get_by_text("Before you start")).to_be_visible()
            expect(page.get_by_text("tick every category that the reasoning trace shows")).to_be_visible()
            page.get_by_role("button", name="I have read this, start rating").click()
            expect(page.locator('[data-role="answer"]')).to_be_visible()
            settled(page)

            # The trace is collapsed until opened, then shown literally (no image, no bold).
            trace = page.locator('[data-role="reasoning"]')
            expect(trace).to_be_hidden()
            page.get_by_text("Reasoning trace (click to open)").click()
            expect(trace).to_be_visible()
            expect(trace).to_have_text(TRACE)
            assert trace.locator("img, strong, a").count() == 0
            assert page.get_by_test_id("stSlider").count() == 0  # this rubric has no scales

            _tick(page, "Recognises the conflict")
            _tick(page, "Adopts a persona")
            _submit(page)
            expect(page.locator("p").filter(has_text="Saved.")).to_be_visible()

            # An exclusive label with another one is refused with a message, nothing stored.
            _tick(page, "None of these")
            _tick(page, "Adopts a persona")
            _submit(page)
            expect(page.get_by_text("cannot be combined with other labels")).to_be_visible()
            _tick(page, "Adopts a persona", checked=False)
            _submit(page)
            expect(page.locator("p").filter(has_text="Saved.")).to_be_visible()

            content = page.content()
            for secret in (SECRET_MODEL, JUDGE_MODEL, str(MISALIGNED_SCORE), str(ALIGNED_SCORE)):
                assert secret not in content
            assert str(COHERENCE_SCORE) not in content
            context.close()
        finally:
            browser.close()

    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            stored = [r.categories for r in session.execute(select(Rating).order_by(Rating.id)).scalars()]  # type: ignore[arg-type]
            exported = ratings_frame(session, "cot")
    finally:
        engine.dispose()
    assert stored == [["recognises_conflict", "adopts_persona"], ["none_of_these"]]
    assert sorted(exported["categories"].tolist()) == sorted(stored)
    assert sorted(exported["label"]) == ["none_of_these", "recognises_conflict+adopts_persona"]
    assert set(exported["rubric"]) == {"reasoning-trace"}
