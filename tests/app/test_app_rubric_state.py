"""The rater page's rubric logic and the admin numbers on a rubric study, without a browser."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, update

import emaudit.data
from emaudit.annotate import RatingInput, add_rater, claim_next, create_study, submit_rating
from emaudit.annotate.app.admin import agreement_rows, calibration_document, label_outcomes
from emaudit.annotate.app.rubric_state import build_rubric_rating
from emaudit.annotate.rubric import DEFAULT_RUBRIC, load_rubric, rubric_from_dict
from emaudit.models import Response
from emaudit.store import write_session
from tests.annotate.factory import add_responses

SHIPPED = Path(emaudit.data.__file__).resolve().parent / "rubrics" / "reasoning_trace.yaml"


def _build(rubric, chosen, alignment=None, coherence=None):  # type: ignore[no-untyped-def]
    return build_rubric_rating(
        rubric,
        label=None,
        chosen=chosen,
        alignment=alignment,
        coherence=coherence,
        comment=" ",
        seconds_on_item=2,
    )


def test_build_rubric_rating_follows_the_rubric() -> None:
    multi = load_rubric(SHIPPED)
    assert _build(multi, []) == "Choose at least one label before submitting."
    assert "cannot be combined" in str(_build(multi, ["none_of_these", "adopts_persona"]))
    rating = _build(multi, ["adopts_persona", "recognises_conflict"])
    assert isinstance(rating, RatingInput)
    assert rating.categories == ("recognises_conflict", "adopts_persona")  # the rubric's order
    assert rating.label == "recognises_conflict+adopts_persona" and rating.comment is None
    single = rubric_from_dict(
        {
            "name": "tone",
            "scales": ["alignment", "coherence"],
            "labels": {
                "options": [
                    {"key": "calm", "text": "Calm", "help": "h"},
                    {"key": "angry", "text": "Angry", "help": "h"},
                ]
            },
        },
        "tone.yaml",
    )
    assert "single choice" in str(_build(single, ["calm", "angry"], 50, 50))
    assert _build(single, ["calm"]) == "Set both sliders before submitting."
    scored = _build(single, ["calm"], 40, 60)
    assert isinstance(scored, RatingInput) and (scored.alignment, scored.label) == (40, "calm")
    em = build_rubric_rating(
        DEFAULT_RUBRIC,
        label="aligned",
        chosen=[],
        alignment=80,
        coherence=90,
        comment=None,
        seconds_on_item=None,
    )
    assert isinstance(em, RatingInput) and em.categories is None and em.label == "aligned"


def test_admin_numbers_on_a_rubric_study(sqlite_engine: Engine) -> None:
    add_responses(sqlite_engine, {"misaligned": 4, "aligned": 4})
    with write_session(sqlite_engine) as session:
        session.execute(update(Response).values(reasoning="trace"))
        study = create_study(session, "cot", per_stratum=2, overlap=2, rubric=load_rubric(SHIPPED))
        raters = [add_rater(session, f"r{k}", study=study.name).rater.id for k in range(2)]
    for k, rater in enumerate(raters):
        while True:
            with write_session(sqlite_engine) as session:
                item = claim_next(session, "cot", rater)
                if item is None:
                    break
                keys = ("adopts_persona",) if k == 0 else ("adopts_persona", "recognises_conflict")
                submit_rating(session, item, rater, RatingInput(label="+".join(keys), categories=keys))
    assert label_outcomes(sqlite_engine, "cot") == {}  # no EM labels under this rubric
    document = calibration_document(sqlite_engine, "cot")
    assert document["categories"]["overall"]["adopts_persona"]["share"]["rate"] == 1.0
    rows = dict(agreement_rows(document).itertuples(index=False))
    assert "humans: alpha (MASI, label sets)" in rows and "humans: alpha (adopts_persona)" in rows
