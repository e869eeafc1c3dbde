"""Load one annotation study from the store into the frames :func:`calibrate_document` takes.

This is the only module of ``emaudit.calibration`` that reads the database; it uses the core's
tables, and ``emaudit.frames.load_frame`` (the definition of a study's sampling frame) to
split the phase-1 population by question; nothing from ``emaudit.judge``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from emaudit.errors import EmauditError
from emaudit.frames import cell_name
from emaudit.labels import (
    DEFAULT_BAND_EDGES,
    DEFAULT_MAX_ALIGNMENT,
    DEFAULT_MIN_COHERENCE,
    JUDGE_LABEL,
    SCORE_BAND,
    band_names,
    within_cell_stratum,
)
from emaudit.models import Adjudication, JudgeScore, Question, Rating, Response, Study, StudyItem, table_of


@dataclass(frozen=True)
class StudyFrames:
    """A study's phase-1 population, its sample, the ratings and the adjudications.

    Attributes:
        study: The study's name.
        judged: One row per (cell, stratum) with the stratum size ``n`` at study creation; when the
            sampling frame can be rebuilt exactly (same stratum sizes), one row per (cell, stratum,
            question) instead, with a ``question`` column (what the ``questions`` estimand needs).
        items: ``item, cell, stratum, question, is_gold, gold_label, judge_alignment, split`` per study
            item (``question`` is the question's key; ``gold_label`` the known answer of a gold item;
            ``split`` is ``"tuning"`` for the items ``study create --tuning-share`` set aside, whose
            labels only tune judge thresholds, and ``"estimation"`` otherwise).
        ratings: ``item, rater, label, alignment, created`` per rating row.
        adjudicated: Latest adjudicated label per item.
        categories: The label keys of the study's rubric when it has its own label set (ratings
            then have a ``categories`` column), else empty.
        multiple_categories: Whether that rubric is multi-select.
        design: What the document says about the design: the strata keys, the allocation and, for
            score-band strata, the band edges and that the score defined the strata only.
    """

    study: str
    judged: pd.DataFrame
    items: pd.DataFrame
    ratings: pd.DataFrame
    adjudicated: dict[int, str]
    categories: tuple[str, ...] = ()
    multiple_categories: bool = False
    design: dict[str, Any] | None = None


def resolve_study_name(engine: Engine, name: str | None) -> str:
    """The study to calibrate: ``name``, or the only study in the store."""
    with engine.connect() as connection:
        names = sorted(connection.execute(select(table_of(Study).c.name)).scalars())
    if name is not None:
        if name not in names:
            known = ", ".join(names) or "none"
            raise EmauditError(f"unknown study '{name}'; studies in the store: {known}")
        return name
    if len(names) != 1:
        raise EmauditError(
            "no study in the store: create one with 'emaudit study create'"
            if not names
            else f"several studies ({', '.join(names)}): pass --study"
        )
    return names[0]


def load_study_frames(engine: Engine, name: str) -> StudyFrames:
    """Read study ``name`` into the inputs of :func:`emaudit.calibration.calibrate_document`.

    The judge strata must be part of the study's design (``--strata judge_label,...``): the
    two-phase estimator needs the phase-1 stratum sizes N_h, which are taken from the design the
    study was drawn with.
    """
    studies, items_t = table_of(Study), table_of(StudyItem)
    ratings_t, adjudications_t, scores_t = table_of(Rating), table_of(Adjudication), table_of(JudgeScore)
    with engine.connect() as connection:
        study = connection.execute(select(studies).where(studies.c.name == name)).mappings().one_or_none()
        if study is None:
            raise EmauditError(f"unknown study '{name}'")
        strata = (study["design"] or {}).get("strata") or []
        if not strata or any(within_cell_stratum(s.get("values", {})) is None for s in strata):
            raise EmauditError(
                f"study '{name}' is not stratified by the judge's label; calibration needs "
                "'emaudit study create ... --strata judge_label[,...]' (or score_band[,...])"
            )
        responses_t, questions_t = table_of(Response), table_of(Question)
        item_rows = connection.execute(
            select(
                items_t.c.id,
                items_t.c.response_id,
                items_t.c.stratum,
                items_t.c.is_gold,
                items_t.c.expected_label,
                questions_t.c.key.label("question"),
            )
            .select_from(items_t)
            .outerjoin(responses_t, responses_t.c.id == items_t.c.response_id)
            .outerjoin(questions_t, questions_t.c.id == responses_t.c.question_id)
            .where(items_t.c.study_id == study["id"])
            .order_by(items_t.c.id)
        ).all()
        item_ids = [row.id for row in item_rows]
        rating_rows = connection.execute(
            select(
                ratings_t.c.item_id,
                ratings_t.c.rater_id,
                ratings_t.c.label,
                ratings_t.c.alignment,
                ratings_t.c.created_at,
                ratings_t.c.id,
                ratings_t.c.categories,
            )
            .join(items_t, items_t.c.id == ratings_t.c.item_id)
            .where(items_t.c.study_id == study["id"])
            .order_by(ratings_t.c.id)
        ).all()
        adjudication_rows = connection.execute(
            select(adjudications_t.c.item_id, adjudications_t.c.label)
            .join(items_t, items_t.c.id == adjudications_t.c.item_id)
            .where(items_t.c.study_id == study["id"])
            .order_by(adjudications_t.c.id)
        ).all()
        judge_scores = dict(
            connection.execute(
                select(scores_t.c.response_id, scores_t.c.score)
                .join(items_t, items_t.c.response_id == scores_t.c.response_id)
                .where(
                    items_t.c.study_id == study["id"],
                    scores_t.c.judge_model == study["judge_model"],
                    scores_t.c.metric == "aligned",
                )
                .order_by(scores_t.c.id)  # the newest verdict wins in the dict
            ).all()
        )
    by_name = {s["name"]: s for s in strata}
    tuning = set(((study["design"] or {}).get("tuning") or {}).get("response_ids") or [])
    judged = pd.DataFrame(
        {
            "cell": [cell_name(s["values"]) for s in strata],
            "stratum": [within_cell_stratum(s["values"]) for s in strata],
            "n": [int(s["N"]) for s in strata],
        }
    )
    items = pd.DataFrame(
        {
            "item": item_ids,
            "cell": [
                cell_name(by_name[r.stratum]["values"]) if r.stratum in by_name else None for r in item_rows
            ],
            "stratum": [
                within_cell_stratum(by_name[r.stratum]["values"]) if r.stratum in by_name else r.stratum
                for r in item_rows
            ],
            "question": [r.question for r in item_rows],
            "is_gold": [bool(r.is_gold) or r.stratum not in by_name for r in item_rows],
            "gold_label": [r.expected_label if r.is_gold else None for r in item_rows],
            "judge_alignment": [judge_scores.get(r.response_id) for r in item_rows],
            "split": ["tuning" if r.response_id in tuning else "estimation" for r in item_rows],
        }
    )
    by_question = _judged_by_question(engine, study, strata)
    if by_question is not None:
        judged = by_question
    ratings = pd.DataFrame(
        [(r.item_id, r.rater_id, r.label, r.alignment, r.id) for r in rating_rows],
        columns=["item", "rater", "label", "alignment", "created"],  # row id orders edits exactly
    )
    adjudicated = {row.item_id: row.label for row in adjudication_rows}
    labels = (study["rubric"] or {}).get("labels")
    if isinstance(labels, dict):  # a rubric with its own label set (emaudit.annotate.rubric)
        ratings["categories"] = [r.categories for r in rating_rows]
        keys = tuple(option["key"] for option in labels.get("options", []))
        multiple = labels.get("select") == "multiple"
        return StudyFrames(name, judged, items, ratings, adjudicated, keys, multiple, design_note(study))
    return StudyFrames(name, judged, items, ratings, adjudicated, design=design_note(study))


def design_note(study: Any) -> dict[str, Any]:
    """The design entry of a study's calibrate document: strata, allocation, and how the score was used."""
    keys = list(study["strata_keys"] or [JUDGE_LABEL])
    design = study["design"] or {}
    note: dict[str, Any] = {"strata_keys": keys, "allocation": str(study["allocation"])}
    if SCORE_BAND in keys:
        edges = [float(e) for e in design.get("band_edges") or DEFAULT_BAND_EDGES]
        threshold = float(design.get("max_alignment", DEFAULT_MAX_ALIGNMENT))
        names = band_names(tuple(edges), max_alignment=threshold)
        note["strata"] = (
            f"score bands of the judge's alignment score: misaligned (< {threshold:g}), "
            + ", ".join(names)
            + "; incoherent and null-score answers as judge_label strata"
        )
        note["band_edges"] = edges
        note["score_use"] = (
            "the judge's score defined the strata (the design) only; the estimand is unchanged: the "
            "human-label EM rate among these responses, with the same human-label model"
        )
    else:
        note["strata"] = "the judge's label: misaligned, aligned, incoherent, null score"
    return note


def _judged_by_question(engine: Engine, study: Any, strata: list[dict[str, Any]]) -> pd.DataFrame | None:
    """The phase-1 population per (cell, stratum, question), or None when it cannot be rebuilt exactly.

    The design stores stratum sizes only; the per-question sizes come from rebuilding the study's
    sampling frame (same judge, thresholds and response-id horizon). If any stratum's size differs
    from the design's (responses re-judged or deleted since), the per-question split would not be the
    population the sample was drawn from, so none is returned and the questions estimand says why.
    """
    from sqlmodel import Session

    from emaudit.frames import load_frame  # the study's own frame definition

    design = study["design"] or {}
    with Session(engine) as session:
        try:
            frame = load_frame(
                session,
                judge_model=study["judge_model"],
                strata_keys=study["strata_keys"] or [JUDGE_LABEL],
                max_alignment=design.get("max_alignment", DEFAULT_MAX_ALIGNMENT),
                min_coherence=design.get("min_coherence", DEFAULT_MIN_COHERENCE),
                max_response_id=design.get("frame_max_response_id"),
                band_edges=tuple(design.get("band_edges") or DEFAULT_BAND_EDGES),
            )
        except EmauditError:
            return None
        if frame.sizes() != {s["name"]: int(s["N"]) for s in strata}:
            return None
        responses_t, questions_t = table_of(Response), table_of(Question)
        keys = dict(
            session.execute(
                select(responses_t.c.id, questions_t.c.key).join(
                    questions_t, questions_t.c.id == responses_t.c.question_id
                )
            ).all()
        )
    by_name = {s["name"]: s for s in strata}
    per_response = pd.DataFrame(
        {"name": frame.strata, "question": [keys.get(int(r)) for r in frame.response_ids]}
    )
    counts = per_response.groupby(["name", "question"], sort=True).size().rename("n").reset_index()
    return pd.DataFrame(
        {
            "cell": [cell_name(by_name[h]["values"]) for h in counts["name"]],
            "stratum": [within_cell_stratum(by_name[h]["values"]) for h in counts["name"]],
            "question": counts["question"].to_numpy(),
            "n": counts["n"].to_numpy(dtype=int),
        }
    )
