"""The app's store logic without Streamlit: links to identities, ratings from form values, the CLI.

Tests that touch the queue run on SQLite and, when reachable, PostgreSQL (the ``engine`` fixture).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from emaudit.annotate import RatingInput
from emaudit.annotate.app.admin import adjudicate, disputed_items
from emaudit.annotate.app.server import app_command
from emaudit.annotate.app.state import (
    Identity,
    build_rating,
    claim,
    identity_params,
    progress,
    remaining_for,
    resolve_identity,
    submit,
)
from emaudit.annotate.queue import Item
from emaudit.annotate.raters import crowd_link
from emaudit.annotate.sampling import get_study
from emaudit.errors import EmauditError
from tests.app.data import make_study


def test_identity_params_keep_only_non_empty_identity_keys() -> None:
    assert identity_params({"token": " t ", "study": "", "utm_source": "x", "PROLIFIC_PID": None}) == {
        "token": "t"
    }


def test_resolve_identity_for_tokens_and_crowd_links(engine: Engine) -> None:
    data = make_study(engine, raters=[("alice", "rater"), ("root", "admin")], quota=3)
    alice = resolve_identity(engine, {"token": data.tokens["alice"]})
    assert alice is not None and alice.study_name == "pilot" and not alice.is_admin
    root = resolve_identity(engine, {"token": data.tokens["root"]})
    assert root is not None and root.is_admin
    with Session(engine) as session:
        study = get_study(session, "pilot")
        key = study.crowd_key
        link = crowd_link(study)
    assert key and f"study={key}&" in link and "pilot" not in link, "the crowd link names no study"
    crowd = resolve_identity(engine, {"study": key, "PROLIFIC_PID": "p_1"})
    assert crowd is not None and crowd.crowd_pid == "p_1" and crowd.study_name == "pilot"
    assert resolve_identity(engine, {"study": key, "PROLIFIC_PID": "p_1"}) == crowd
    for bad in (
        {"token": "nope"},
        {"study": "missing", "PROLIFIC_PID": "p_1"},
        {"study": "pilot", "PROLIFIC_PID": "p_1"},  # the study's name is not its crowd key
        {"study": key, "PROLIFIC_PID": "bad pid!"},
        {"study": "pilot"},
        {},
    ):
        assert resolve_identity(engine, bad) is None


def test_build_rating_requires_a_label_and_drops_scores_for_unscored_labels() -> None:
    assert build_rating(None, 50, 50, None, 1.0) == "Choose a label before submitting."
    assert build_rating("aligned", None, 50, None, 1.0) == "Set the alignment slider before submitting."
    assert build_rating("misaligned", None, None, None, 1.0) == (
        "Set the alignment and coherence sliders before submitting."
    )
    rating = build_rating("aligned", 80, 70, "  fine ", 3.14159)
    assert rating == RatingInput("aligned", 80, 70, "fine", 3.14)
    assert build_rating("refusal", 50, 50, "", None) == RatingInput("refusal", None, None, None, None)


def test_progress_uses_quota_or_remaining() -> None:
    assert progress(Item("i", "q", "a", 2, 4), None) == (0.5, "2 of 4 rated")
    assert progress(Item("i", "q", "a", 1, None), 3) == (0.25, "1 of 4 rated")
    assert progress(Item("i", "q", "a", 0, None), 0) == (0.0, "0 of 1 rated")


def test_submit_errors_become_messages(engine: Engine) -> None:
    data = make_study(engine)
    alice = resolve_identity(engine, {"token": data.tokens["alice"]})
    bob = resolve_identity(engine, {"token": data.tokens["bob"]})
    assert alice is not None and bob is not None
    item = claim(engine, alice)
    assert item is not None
    assert remaining_for(engine, alice) == 4
    outcome = submit(engine, alice, item.item_id, RatingInput("aligned", 150, 50))
    assert not outcome.ok and "alignment" in outcome.message and "outside 0-100" in outcome.message
    assert submit(engine, alice, "no-such-item", RatingInput("aligned", 50, 50)).message.startswith(
        "This answer is no longer"
    )
    # Bob holds no lease and the only slot is Alice's: his submit is refused, not crashed.
    full = submit(engine, bob, item.item_id, RatingInput("aligned", 50, 50))
    assert not full.ok and "received all the ratings" in full.message
    assert submit(engine, alice, item.item_id, RatingInput("aligned", 50, 50)).ok
    assert remaining_for(engine, alice) == 3


def test_disputed_items_and_adjudication(engine: Engine) -> None:
    data = make_study(engine, overlap=2, raters=[("alice", "rater"), ("bob", "rater"), ("root", "admin")])
    ids = {name: resolve_identity(engine, {"token": token}) for name, token in data.tokens.items()}
    alice, bob, root = ids["alice"], ids["bob"], ids["root"]
    assert alice is not None and bob is not None and root is not None
    labels = {"alice": ["misaligned", "refusal", "aligned", "aligned"], "bob": ["aligned"] * 4}
    for name, who in (("alice", alice), ("bob", bob)):
        for label in labels[name]:
            item = claim(engine, who)
            assert item is not None
            assert submit(engine, who, item.item_id, RatingInput(label, 50, 50)).ok
    em_split = disputed_items(engine, "pilot")
    assert len(em_split) == 1 and {r.label for r in em_split[0].ratings} == {"misaligned", "aligned"}
    assert em_split[0].judge_scores.keys() == {"aligned", "coherent"}
    assert len(disputed_items(engine, "pilot", any_label=True)) == 2
    adjudicate(engine, root, em_split[0].item_id, "misaligned", note="clear")
    assert disputed_items(engine, "pilot") == []
    (again,) = disputed_items(engine, "pilot", include_adjudicated=True)
    assert again.adjudicated == "misaligned"
    with pytest.raises(EmauditError, match="unknown label"):
        adjudicate(engine, root, again.item_id, "evil")


def test_app_command_launches_streamlit_headless(
    cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, sqlite_engine: Engine
) -> None:
    import emaudit.annotate.cli as annotate_cli

    calls: list[tuple[str, int, str]] = []

    def fake_serve(database_url: str, *, port: int, address: str) -> int:
        calls.append((database_url, port, address))
        return 0

    monkeypatch.setattr(annotate_cli, "serve_app", fake_serve)
    url = sqlite_engine.url.render_as_string(hide_password=False)
    result = cli("app", "--port", "8765", "--db", url)
    assert result.exit_code == 0, result.stderr
    assert calls == [(url, 8765, "localhost")]
    command = app_command(8765, "localhost")
    assert command[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert command[4].endswith("app/streamlit_app.py")
    assert command[command.index("--server.port") + 1] == "8765"
    assert command[command.index("--server.headless") + 1] == "true"


def test_app_command_refuses_a_database_without_schema(cli: Callable[..., Any], tmp_path: Any) -> None:
    result = cli("app", "--db", f"sqlite:///{tmp_path / 'none.db'}")
    assert result.exit_code == 2 and "emaudit init" in result.stderr


def test_identity_is_hashable_for_callbacks() -> None:
    assert hash(Identity(1, "rater", 1, "s")) == hash(Identity(1, "rater", 1, "s"))


def test_label_outcomes_count_ties_and_cant_tell_apart(engine: Engine) -> None:
    from emaudit.annotate.app.admin import label_outcomes

    data = make_study(engine, overlap=2)
    ids = {name: resolve_identity(engine, {"token": token}) for name, token in data.tokens.items()}
    alice, bob = ids["alice"], ids["bob"]
    assert alice is not None and bob is not None
    # Item 1: misaligned vs aligned (a tie); item 2: can't tell twice; item 3: refusal twice.
    votes = [("misaligned", "aligned"), ("cant_tell", "cant_tell"), ("refusal", "refusal")]
    for alice_label, bob_label in votes:
        item = claim(engine, alice)
        assert item is not None
        scores = (10, 90) if alice_label == "misaligned" else (None, None)
        assert submit(engine, alice, item.item_id, RatingInput(alice_label, *scores)).ok
        bob_scores = (90, 90) if bob_label == "aligned" else (None, None)
        assert submit(engine, bob, item.item_id, RatingInput(bob_label, *bob_scores)).ok  # same item
    assert label_outcomes(engine, "pilot") == {"tie": 1, "cant_tell": 1, "unanimous": 1}
