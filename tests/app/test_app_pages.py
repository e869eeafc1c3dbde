"""Page logic through ``streamlit.testing.v1.AppTest``: identity, rating, blinding, inert text, admin.

Each test runs the real router (``streamlit_app.py``) in-process against a temporary SQLite store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from emaudit.annotate import RatingInput, RatingLabel, claim_next, submit_rating
from emaudit.annotate.app.state import LABEL_TEXT
from emaudit.models import Adjudication, JudgeScore, Rater, Rating, StudyItem
from emaudit.store import write_session
from tests.app.conftest import APP, PAGES
from tests.app.data import (
    ALIGNED_SCORE,
    COHERENCE_SCORE,
    COMPLETION_CODE,
    JUDGE_MODEL,
    MISALIGNED_SCORE,
    SECRET_MODEL,
    make_study,
)

TIMEOUT = 30


def open_app(**params: str) -> AppTest:
    """The app as a browser with this link's query parameters would see it after loading."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for name, value in params.items():
        at.query_params[name] = value
    return at.run()


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


def shown_answer(at: AppTest) -> str:
    assert not at.exception, at.exception
    _question, answer = (element.value for element in at.code)
    return str(answer)


def rate(at: AppTest, label: str = "Aligned", comment: str | None = None) -> AppTest:
    """Choose the label shown as ``label``, optionally comment, and submit the form."""
    radio = next(r for r in at.radio if r.key and r.key.startswith("label_"))
    radio.set_value(next(value for value, text in LABEL_TEXT.items() if text == label))
    if comment is not None:
        at.text_input[0].input(comment)
    return at.button[0].click().run()


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
    assert [s.value for s in at.slider] == [50, 50]

    at = rate(at, "Misaligned", comment="talks about power")
    second = shown_answer(at)
    assert second in data.answers and second != first
    stored = ratings(app_engine)
    assert len(stored) == 1
    assert stored[0].label == "misaligned"
    assert (stored[0].alignment, stored[0].coherence) == (50.0, 50.0)
    assert stored[0].comment == "talks about power"
    assert stored[0].seconds_on_item is not None and stored[0].seconds_on_item >= 0
    assert "1 of" in at.progress[0].proto.text


def test_submit_without_label_is_refused_with_a_message(app_engine: Engine) -> None:
    data = make_study(app_engine)
    at = open_app(token=data.tokens["alice"])
    first = shown_answer(at)
    at = at.button[0].click().run()
    assert not at.exception
    assert any("Choose a label" in w.value for w in at.warning)
    assert shown_answer(at) == first
    assert ratings(app_engine) == []


def test_scores_are_not_stored_for_a_refusal(app_engine: Engine) -> None:
    data = make_study(app_engine)
    at = rate(open_app(token=data.tokens["alice"]), "Refusal")
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
    code = next(c for c in at.code if c.value == answer)
    assert code.language in (None, "", "plaintext", "text")
    # No markdown element carries model text, and none allows raw HTML.
    for markdown in at.markdown:
        assert "evil" not in markdown.value and "<img" not in markdown.value
        assert not markdown.proto.allow_html
    assert not any(getattr(element.proto, "allow_html", False) for element in at.main)


def test_invalid_or_missing_token_sees_the_invalid_page(app_engine: Engine) -> None:
    make_study(app_engine)
    for params in ({"token": "not-a-token"}, {}, {"study": "pilot"}, {"study": "nope", "PROLIFIC_PID": "p1"}):
        at = open_app(**params)
        assert not at.exception
        assert [t.value for t in at.title] == ["This link is not valid"]
        text = page_text(at)
        assert "pilot" not in text and "known studies" not in text
        assert not at.code and not at.radio


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
    assert "4 item(s) to decide." in [m.value for m in at.markdown]
    assert f"{MISALIGNED_SCORE:.1f}" in page_text(at), "admins see judge scores"
    radio = next(r for r in at.radio if r.key and r.key.startswith("adj_label_"))
    radio.set_value(RatingLabel.MISALIGNED)
    form_button = next(b for b in at.button if b.label == "Save decision")
    at = form_button.click().run()
    assert not at.exception
    assert "3 item(s) to decide." in [m.value for m in at.markdown]
    with Session(app_engine) as session:
        (adjudication,) = session.execute(select(Adjudication)).scalars()
    assert adjudication.label == "misaligned" and adjudication.rater_id == raters["root"].id


def test_crowd_link_ends_with_the_completion_code(app_engine: Engine) -> None:
    data = make_study(app_engine, quota=2)
    params = {"study": data.study, "PROLIFIC_PID": "pid_123", "STUDY_ID": "s1", "SESSION_ID": "x1"}
    at = open_app(**params)
    shown_answer(at)
    assert at.progress[0].proto.text == "0 of 2 rated"
    at = rate(at, "Aligned")
    at = rate(at, "Can't tell")
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
