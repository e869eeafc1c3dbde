"""The rater page's rubric side, without Streamlit: the study's rubric, the trace, the rating to store.

Blinding as in :mod:`~emaudit.annotate.app.state`: :func:`reasoning_for` returns the reasoning
text of the item the rater holds (by its opaque id) and nothing else about the response.
"""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlmodel import Session

from emaudit.annotate._tables import ITEM, RESPONSE, STUDY
from emaudit.annotate.app.state import Identity, build_rating
from emaudit.annotate.ratings import RatingInput
from emaudit.annotate.rubric import DEFAULT_RUBRIC, LABEL_SEPARATOR, Rubric, study_rubric


def rubric_for(engine: Engine, identity: Identity) -> Rubric:
    """The rubric of the rater's study (the EM rubric when the study stored none)."""
    if identity.study_id is None:
        return DEFAULT_RUBRIC
    with Session(engine) as session:
        stored = session.execute(select(STUDY.c.rubric).where(STUDY.c.id == identity.study_id)).scalar()
    return study_rubric(stored)


def reasoning_for(engine: Engine, item_id: str) -> str:
    """The reasoning trace of the item with public id ``item_id`` ("" when it has none)."""
    with Session(engine) as session:
        text = session.execute(
            select(RESPONSE.c.reasoning)
            .select_from(ITEM.join(RESPONSE, RESPONSE.c.id == ITEM.c.response_id))
            .where(ITEM.c.public_id == item_id)
        ).scalar()
    return text or ""


def build_rubric_rating(
    rubric: Rubric,
    *,
    label: str | None,
    chosen: list[str],
    alignment: float | None,
    coherence: float | None,
    comment: str | None,
    seconds_on_item: float | None,
) -> RatingInput | str:
    """The rating to store under ``rubric`` from the form's values, or a message saying what to fix.

    The EM rubric is :func:`~emaudit.annotate.app.state.build_rating` unchanged. A rubric with its
    own labels needs a valid choice (:meth:`Rubric.categories_problem`) and, if it has scales, both.
    """
    if rubric.em_labels:
        return build_rating(label, alignment, coherence, comment, seconds_on_item)
    problem = rubric.categories_problem(chosen)
    if problem is not None:
        return f"{problem[0].upper()}{problem[1:]} before submitting."
    if rubric.scales and (alignment is None or coherence is None):
        return "Set both sliders before submitting."
    keys = rubric.canonical(chosen)
    return RatingInput(
        label=LABEL_SEPARATOR.join(keys),
        alignment=alignment if rubric.scales else None,
        coherence=coherence if rubric.scales else None,
        comment=(comment or "").strip() or None,
        seconds_on_item=None if seconds_on_item is None else round(max(seconds_on_item, 0.0), 2),
        categories=keys,
    )
