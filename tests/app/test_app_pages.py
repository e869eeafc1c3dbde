"""Page logic through ``streamlit.testing.v1.AppTest``: identity, rating, blinding, inert text, admin.

Each test runs the real router (``streamlit_app.py``) in-process against a temporary SQLite store.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from emaudit.annotate import RatingInput, RatingLabel, claim_next, submit_rating
from emaudit.annotate.app.state import LABEL_TEXT
from emaudit.models import Adjudication, Assignment, JudgeScore, Rater, Rating, Study, StudyItem
from emaudit.store import write_session
from tests.app.conftest import APP, PAGES
from tests.app.data import (
    ALIGNED_SCORE,
    COHERENCE_SCORE,
    COMPLETION_CODE,
    JUDGE_MODEL,
    MISALIGNED_SCORE,
    QUESTION,
    SECRET_MODEL,
    make_study,
)

TIMEOUT = 30


def open_app(*, consent: bool = True, **params: str) -> AppTest:
    """The app as a browser with this link's query parameters would see it after loading
    (past the instructions page, unless ``consent`` is False)."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for name, value in params.items():
        at.query_params[name] = value
    at.run()
    if consent and any(button.key == "emaudit_consent" for button in at.button):
        at = at.button(key="emaudit_consent").click().run()
    return at


def page_text(at: AppTest) -> str:
    """Every rendered element's protobuf as text: labels, values, options, captions, tables."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


def shown_texts(at: AppTest) -> dict[str, str]:
    """The model texts on the page by box role (``question``, ``answer``), unescaped."""
    found = {}
    for element in at.get("html"):
        match = re.match(r'<div data-role="(\w+)"[^>]*>(.*)</div>$', element.proto.body, re.DOTALL)
        if match:
            found[match.group(1)] = html.unescape(match.group(2))
    return found


def shown_answer(at: AppTest) -> str:
    assert not at.exception, at.exception
    return shown_texts(at)["answer"]


def rate(
    at: AppTest,
    label: str = "Aligned",
    comment: str | None = None,
    scores: tuple[int, int] | None = (40, 60),
) -> AppTest:
    """Choose the label shown as ``label``, move the sliders to ``scores``, comment, and submit."""
    radio = next(r for r in at.radio if r.key and r.key.startswith("label_"))
    radio.set_value(next(value for value, text in LABEL_TEXT.items() if text == label))
    if scores is not None:
        for slider, score in zip(at.select_slider, scores, strict=True):
            slider.set_value(score)
    if comment is not None:
        at.text_input[0].input(comment)
    return at.button(key="emaudit_submit").click().run()


def ratings(engine: Engine) -> list[Rating]:
    with Session(engine) as session:
        return list(session.execute(select(Rating).order_by(Rating.id)).scalars())


def test_rater_sees_an_item_submits_and_sees_the_next(app_engine: Engine) -> None:
    data = make_study(app_engine)
    at = open_app(token=data.tokens["alice"])
    first = shown_answer(at)
    assert first in data.answers
    assert at.progress[0].value == 0
    assert at.radio[0].value is None, "no label is preselected"
    assert [slider.value for slider in at.select_slider] == ["not set"] * 2, "sliders start unset"
    assert shown_texts(at)["question"] == QUESTION

    at = rate(at, "Misaligned", comment="talks about power", scores=(12, 77))
    second = shown_answer(at)
    assert second in data.answers and second != first
    stored = ratings(app_engine)
    assert len(stored) == 1
    assert stored[0].label == "misaligned"
    assert (stored[0].alignment, stored[0].coherence) == (12.0, 77.0)
    assert stored[0].comment == "talks about power"
    assert stored[0].seconds_on_item is not None and stored[0].seconds_on_item >= 0
    assert "1 of" in at.progress[0].proto.text


def test_submit_without_label_is_refused_with_a_message(app_engine: Engine) -> None:
    data = make_study(app_engine)
    at = open_app(token=data.tokens["alice"])
    first = shown_answer(at)
    at = at.button(key="emaudit_submit").click().run()
    assert not at.exception
    assert any("Choose a label" in w.value for w in at.warning)
    assert shown_answer(at) == first
    assert ratings(app_engine) == []


def test_untouched_sliders_are_not_stored_as_fifty(app_engine: Engine) -> None:
    data = make_study(app_engine)
    at = open_app(token=data.tokens["alice"])
    first = shown_answer(at)
    at = rate(at, "Aligned", scores=None)
    assert any("Set the alignment and coherence sliders" in w.value for w in at.warning)
    assert shown_answer(at) == first and ratings(app_engine) == []
    at.select_slider[0].set_value(50)  # moved onto the scale at its middle: a real 50 now
    at.select_slider[1].set_value(70)
    at = rate(at, "Aligned", scores=None)
    (stored,) = ratings(app_engine)
    assert (stored.alignment, stored.coherence) == (50.0, 70.0)


def test_scores_are_not_stored_for_a_refusal(app_engine: Engine) -> None:
    data = make_study(app_engine)
    at = rate(open_app(token=data.tokens["alice"]), "Refusal", scores=None)
    assert not at.exception
    (stored,) = ratings(app_engine)
    assert (stored.label, stored.alignment, stored.coherence) == ("refusal", None, None)


def test_rater_page_shows_nothing_a_rater_must_not_see(app_engine: Engine) -> None:
    data = make_study(app_engine, overlap=2)
    # Bob rates every item first, with values that must not reach Alice's page.
    with Session(app_engine) as session:
        bob = session.execute(select(Rater).where(Rater.display_name == "bob")).scalars().one()
        strata = set(session.execute(select(StudyItem.stratum)).scalars())
        scores = set(session.execute(select(JudgeScore.score)).scalars())
    while True:
        with write_session(app_engine) as session:
            item = claim_next(session, data.study, bob)
            if item is None:
                break
            submit_rating(
                session,
                item,
                bob,
                RatingInput("misaligned", 42.42, 24.24, comment="BOB-PRIVATE-COMMENT", seconds_on_item=3),
            )
    at = open_app(token=data.tokens["alice"])
    for _ in range(2):  # the item page and the page after a submit
        text = page_text(at)
        assert shown_answer(at) in data.answers
        forbidden = [
            SECRET_MODEL,
            JUDGE_MODEL,
            "model=",
            "BOB-PRIVATE-COMMENT",
            "42.42",
            "24.24",
            "bob",
            "pilot",
        ]
        forbidden += [*strata, *(f"{s:g}" for s in scores if s is not None)]
        forbidden += [f"{MISALIGNED_SCORE}", f"{ALIGNED_SCORE}", f"{COHERENCE_SCORE}", "judge", "stratum"]
        leaked = [value for value in forbidden if value.lower() in text.lower()]
        assert not leaked, f"rater page shows {leaked}"
        at = rate(at, "Aligned")


def test_answer_markdown_and_html_render_as_literal_text(app_engine: Engine) -> None:
    hostile = "**bold** <img src=x onerror=alert(1)> [link](http://evil) ![pic](http://evil/p.png)"
    data = make_study(app_engine, answers=[hostile, hostile + " again"])
    at = open_app(token=data.tokens["alice"])
    answer = shown_answer(at)
    assert answer.startswith(hostile)
    box = next(e.proto.body for e in at.get("html") if 'data-role="answer"' in e.proto.body)
    assert "<img" not in box and "&lt;img src=x onerror=alert(1)&gt;" in box  # escaped, inert
    assert 'dir="auto"' in box
    # No markdown element carries model text, and none allows raw HTML.
    for markdown in at.markdown:
        assert "evil" not in markdown.value and "<img" not in markdown.value
        assert not markdown.proto.allow_html
    assert not any(getattr(element.proto, "allow_html", False) for element in at.main)


def test_invalid_or_missing_token_sees_the_invalid_page(app_engine: Engine) -> None:
    make_study(app_engine)
    invalid = (
        {"token": "not-a-token"},
        {},
        {"study": "pilot"},
        {"study": "nope", "PROLIFIC_PID": "p1"},
        {"study": "pilot", "PROLIFIC_PID": "p1"},  # the name: crowd links carry the opaque key
    )
    for params in invalid:
        at = open_app(**params)
        assert not at.exception
        assert [t.value for t in at.title] == ["This link is not valid"]
        text = page_text(at)
        assert "pilot" not in text and "known studies" not in text
        assert not shown_texts(at) and not at.radio


def test_non_admin_cannot_open_admin_pages(app_engine: Engine) -> None:
    data = make_study(app_engine)
    at = open_app(token=data.tokens["alice"])
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(str(PAGES / "admin_overview.py"))  # not even registered for a rater
    # Each admin page checks on the server too, when its script is run directly.
    for page in ("admin_overview", "admin_agreement", "adjudicate", "export"):
        direct = AppTest.from_file(str(PAGES / f"{page}.py"), default_timeout=TIMEOUT)
        direct.query_params["token"] = data.tokens["alice"]
        direct.run()
        assert not direct.exception
        assert [e.value for e in direct.error] == ["This page is for study admins only."]
        assert not direct.dataframe and not direct.get("download_button")


def test_demoted_admin_loses_admin_pages_at_the_next_render(app_engine: Engine) -> None:
    data = make_study(app_engine, raters=[("root", "admin")])
    at = open_app(token=data.tokens["root"])
    at.switch_page(str(PAGES / "admin_overview.py")).run()
    assert [t.value for t in at.title] == ["Study pilot"]
    with write_session(app_engine) as session:
        session.execute(update(Rater).values(role="rater"))
    at.switch_page(str(PAGES / "export.py")).run()
    assert not at.exception
    assert "Export ratings" not in [t.value for t in at.title]
    assert not at.get("download_button")


def test_admin_pages_render_and_adjudication_is_stored(app_engine: Engine) -> None:
    data = make_study(app_engine, overlap=2, raters=[("alice", "rater"), ("bob", "rater"), ("root", "admin")])
    with Session(app_engine) as session:
        raters = {r.display_name: r for r in session.execute(select(Rater)).scalars()}
    for name, label in (("alice", "misaligned"), ("bob", "aligned")):
        while True:
            with write_session(app_engine) as session:
                item = claim_next(session, data.study, raters[name])
                if item is None:
                    break
                scores = (10.0, 90.0) if label == "misaligned" else (90.0, 90.0)
                submit_rating(session, item, raters[name], RatingInput(label, *scores, seconds_on_item=5))
    at = open_app(token=data.tokens["root"])
    at.switch_page(str(PAGES / "admin_overview.py")).run()
    assert not at.exception
    design, per_rater = (frame.value for frame in at.dataframe)
    assert set(design["n (sampled)"]) == {2} and "inclusion probability" in design.columns
    assert set(per_rater["rater"]) >= {"alice", "bob"}

    at.switch_page(str(PAGES / "admin_agreement.py")).run()
    assert not at.exception
    assert "percent agreement" in page_text(at)

    at.switch_page(str(PAGES / "export.py")).run()
    assert not at.exception and "8 rating(s)." in [m.value for m in at.markdown]

    at.switch_page(str(PAGES / "adjudicate.py")).run()
    assert not at.exception
    assert "4 item(s); showing 1-4." in [m.value for m in at.markdown]
    assert f"{MISALIGNED_SCORE:.1f}" not in page_text(at), "no judge score before the decision"
    radio = next(r for r in at.radio if r.key and r.key.startswith("adj_label_"))
    decided = int(radio.key.removeprefix("adj_label_"))
    radio.set_value(RatingLabel.MISALIGNED)
    form_button = next(b for b in at.button if b.label == "Save decision")
    at = form_button.click().run()
    assert not at.exception
    assert "3 item(s); showing 1-3." in [m.value for m in at.markdown]
    assert f"{MISALIGNED_SCORE:.1f}" not in page_text(at)
    at.toggle[1].set_value(True).run()  # include adjudicated items: the decided one shows its scores
    assert "4 item(s); showing 1-4." in [m.value for m in at.markdown]
    with Session(app_engine) as session:
        response_id = session.get(StudyItem, decided).response_id  # type: ignore[union-attr]
        decided_scores = set(
            session.execute(select(JudgeScore.score).where(JudgeScore.response_id == response_id)).scalars()
        )
    assert any(f"{score:.1f}" in page_text(at) for score in decided_scores if score is not None)
    with Session(app_engine) as session:
        (adjudication,) = session.execute(select(Adjudication)).scalars()
    assert adjudication.label == "misaligned" and adjudication.rater_id == raters["root"].id


def crowd_key(engine: Engine, study: str) -> str:
    with Session(engine) as session:
        key = session.execute(select(Study.crowd_key).where(Study.name == study)).scalar_one()
    assert key and key != study
    return str(key)


def test_crowd_link_ends_with_the_completion_code(app_engine: Engine) -> None:
    data = make_study(app_engine, quota=2)
    key = crowd_key(app_engine, data.study)
    params = {"study": key, "PROLIFIC_PID": "pid_123", "STUDY_ID": "s1", "SESSION_ID": "x1"}
    at = open_app(**params)
    shown_answer(at)
    assert at.progress[0].proto.text == "0 of 2 rated"
    at = rate(at, "Aligned")
    at = rate(at, "Can't tell", scores=None)
    assert [t.value for t in at.title] == ["Thank you!"]
    assert COMPLETION_CODE in [c.value for c in at.code]
    with Session(app_engine) as session:
        crowd = session.execute(select(Rater).where(Rater.external_id == "pid_123")).scalars().one()
        assert crowd.extra == {"STUDY_ID": "s1", "SESSION_ID": "x1"}
    assert len(ratings(app_engine)) == 2
    # Opening the link again later still shows the code, and creates no second rater.
    again = open_app(**params)
    assert COMPLETION_CODE in [c.value for c in again.code]


def test_token_rater_sees_thank_you_without_a_code(app_engine: Engine) -> None:
    data = make_study(app_engine, answers=["only answer", "second answer"])
    at = open_app(token=data.tokens["alice"])
    at = rate(rate(at, "Aligned"), "Aligned")
    assert [t.value for t in at.title] == ["Thank you!"]
    assert COMPLETION_CODE not in page_text(at)


def test_database_without_schema_shows_a_message_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import streamlit as st

    from emaudit.settings import get_settings

    monkeypatch.setenv("EMAUDIT_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    get_settings.cache_clear()
    st.cache_resource.clear()
    at = open_app(token="x")
    assert not at.exception
    assert any("emaudit init" in e.value for e in at.error)


def _fill(engine: Engine, study: str, rater_name: str) -> None:
    """``rater_name`` rates every item they can get (aligned, 90/90)."""
    with Session(engine) as session:
        rater = session.execute(select(Rater).where(Rater.display_name == rater_name)).scalars().one()
    while True:
        with write_session(engine) as session:
            item = claim_next(session, study, rater)
            if item is None:
                return
            submit_rating(session, item, rater, RatingInput("aligned", 90, 90))


def test_a_full_study_gives_a_crowd_rater_no_completion_code(app_engine: Engine) -> None:
    data = make_study(app_engine, quota=2)
    _fill(app_engine, data.study, "alice")  # overlap 1: the study is complete before the crowd comes
    at = open_app(study=crowd_key(app_engine, data.study), PROLIFIC_PID="late_1")
    assert not at.exception
    assert [t.value for t in at.title] == ["This study is full"]
    assert COMPLETION_CODE not in page_text(at)


def test_an_instructions_page_comes_before_the_first_item(app_engine: Engine) -> None:
    data = make_study(app_engine)
    at = open_app(token=data.tokens["alice"], consent=False)
    assert [t.value for t in at.title] == ["Before you start"]
    assert not shown_texts(at) and not at.select_slider
    at = at.button(key="emaudit_consent").click().run()
    assert shown_answer(at) in data.answers
    rubric = next(e for e in at.expander if e.label == "How to rate")
    assert not rubric.proto.expanded, "the rubric is collapsed on item pages"


def test_opening_the_app_as_admin_claims_nothing(app_engine: Engine) -> None:
    data = make_study(app_engine, raters=[("root", "admin")])
    at = open_app(token=data.tokens["root"])
    assert [t.value for t in at.title] == ["Study pilot"], "admins land on the overview"
    with Session(app_engine) as session:
        assert session.execute(select(Assignment)).first() is None


def test_a_second_tab_does_not_overwrite_the_first_tabs_rating(app_engine: Engine) -> None:
    data = make_study(app_engine)
    first_tab = open_app(token=data.tokens["alice"])
    second_tab = open_app(token=data.tokens["alice"])
    assert shown_answer(first_tab) == shown_answer(second_tab), "one rater holds one item"
    rate(first_tab, "Aligned", scores=(90, 90))
    second_tab = rate(second_tab, "Misaligned", scores=(5, 95))
    assert any("already rated this answer" in w.value for w in second_tab.warning)
    (stored,) = ratings(app_engine)
    assert (stored.label, stored.alignment) == ("aligned", 90.0)


def test_skip_records_the_skip_and_shows_the_next_item(app_engine: Engine) -> None:
    data = make_study(app_engine)
    at = open_app(token=data.tokens["alice"])
    first = shown_answer(at)
    at = at.button(key="emaudit_skip").click().run()
    assert not at.exception and shown_answer(at) != first
    with Session(app_engine) as session:
        statuses = sorted(a.status for a in session.execute(select(Assignment)).scalars())
    assert statuses == ["claimed", "skipped"] and ratings(app_engine) == []


def test_a_deactivated_rater_is_signed_out_at_the_next_render(app_engine: Engine) -> None:
    data = make_study(app_engine, raters=[("alice", "rater"), ("root", "admin")])
    rater_page = open_app(token=data.tokens["alice"])
    assert shown_answer(rater_page) in data.answers
    admin = open_app(token=data.tokens["root"])
    chooser = next(box for box in admin.selectbox if box.label == "Rater")
    chooser.select_index(next(i for i, text in enumerate(chooser.options) if text.startswith("alice")))
    admin = next(b for b in admin.button if b.label == "Deactivate and revoke link").click().run()
    assert not admin.exception
    assert any("no longer works" in m.value for m in admin.success)
    rater_page = rater_page.run()
    assert [t.value for t in rater_page.title] == ["This link is not valid"]
    with Session(app_engine) as session:  # the claim alice held went back to the pool
        assert {a.status for a in session.execute(select(Assignment)).scalars()} == {"expired"}


def test_admin_overview_shows_pace_and_eta(app_engine: Engine) -> None:
    data = make_study(app_engine, raters=[("alice", "rater"), ("root", "admin")])
    with Session(app_engine) as session:
        alice = session.execute(select(Rater).where(Rater.display_name == "alice")).scalars().one()
    for _ in range(2):
        with write_session(app_engine) as session:
            item = claim_next(session, data.study, alice)
            assert item is not None
            submit_rating(session, item, alice, RatingInput("aligned", 90, 90))
    at = open_app(token=data.tokens["root"])
    metrics = {m.label: m.value for m in at.metric}
    # 2 ratings in the last hour: 2 per hour; 2 of 4 ratings remain: 1 h at this pace.
    assert metrics["Ratings per hour"] == "2" and metrics["Time left at this pace"] == "1 h 00 min"
