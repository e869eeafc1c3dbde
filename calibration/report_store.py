"""Everything ``emaudit report`` reads from the store: the calibrate document and the per-response rows.

The document is built exactly as ``emaudit calibrate`` builds it (same frames, same options), so its
numbers are the numbers of ``emaudit calibrate --json``. The figures need a little more than the
document: each judged response's scores and question (for the alignment-vs-coherence scatter and the
per-question bars) and each study item's human label (to mark the judge's false positives and
negatives). Those rows come from the study's own sampling frame (the responses the study was drawn
from, strata as at creation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select
from sqlmodel import Session

from emaudit.calibration.consensus import CantTellRule, human_labels
from emaudit.calibration.estimate import Estimand
from emaudit.calibration.label_model import LabelModel
from emaudit.calibration.report import calibrate_document
from emaudit.calibration.study_frames import StudyFrames, load_study_frames
from emaudit.frames import cell_name
from emaudit.labels import (
    DEFAULT_BAND_EDGES,
    DEFAULT_MAX_ALIGNMENT,
    DEFAULT_MIN_COHERENCE,
    JUDGE_LABEL,
    within_cell_stratum,
)
from emaudit.models import Question, Response, Study, table_of


@dataclass(frozen=True)
class StudyDesign:
    """How the study was drawn (for the methods paragraph)."""

    name: str
    judge_model: str | None
    strata_keys: list[str]
    allocation: str
    overlap: int
    seed: int
    total: int | None
    n_strata: int
    max_alignment: float
    min_coherence: float
    n_raters: int
    n_ratings: int
    band_edges: tuple[float, ...] = ()


@dataclass(frozen=True)
class ReportInputs:
    """A study's calibrate document plus the rows its figures need.

    Attributes:
        document: The calibrate document (``study`` set), equal to ``emaudit calibrate --json``.
        design: The study's design.
        responses: One row per response of the study's frame: ``response_id, cell, judge_label,
            question, alignment, coherence`` (scores of the study's judge, newest verdict).
        items: One row per non-gold study item with a response: ``item, response_id, cell,
            judge_label, human`` (1 misaligned, 0 not, NaN undecided), ``judge_alignment``, ``weight``
            (``N_h / n_h``: the inverse inclusion probability of its stratum's labelled items).
    """

    document: dict[str, Any]
    design: StudyDesign
    responses: pd.DataFrame
    items: pd.DataFrame


def build_document(
    frames: StudyFrames,
    *,
    cant_tell: CantTellRule = "exclude",
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    estimand: Estimand = "responses",
    label_model: LabelModel = "auto",
    method: str = "two_phase",
) -> dict[str, Any]:
    """The calibrate document of ``frames``, exactly as ``emaudit calibrate`` computes it.

    ``method`` is ``"two_phase"`` (per-cell design, the default) or ``"pooled"`` (one calibration pool
    across cells; :mod:`emaudit.calibration.report_pooled`).
    """
    document = calibrate_document(
        frames.judged,
        frames.items,
        frames.ratings,
        adjudicated=frames.adjudicated,
        categories=frames.categories or None,
        multiple_categories=frames.multiple_categories,
        cant_tell=cant_tell,
        confidence=confidence,
        n_boot=n_boot,
        seed=seed,
        estimand=estimand,
        label_model=label_model,
        method=method,
    )
    document["study"] = frames.study
    if frames.design is not None:
        document["design"] = frames.design
    return document


def load_report_inputs(
    engine: Engine,
    study: str,
    *,
    cant_tell: CantTellRule = "exclude",
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    method: str = "two_phase",
) -> ReportInputs:
    """Read study ``study`` for a report (the options are those of ``emaudit calibrate``)."""
    from emaudit.frames import load_frame  # the study's own frame: strata as drawn
    from emaudit.rates import response_frame

    frames = load_study_frames(engine, study)
    document = build_document(
        frames, cant_tell=cant_tell, confidence=confidence, n_boot=n_boot, seed=seed, method=method
    )
    studies = table_of(Study)
    with engine.connect() as connection:
        row = connection.execute(select(studies).where(studies.c.name == study)).mappings().one()
    design_raw: dict[str, Any] = row["design"] or {}
    strata_keys = list(row["strata_keys"] or [JUDGE_LABEL])
    max_alignment = float(design_raw.get("max_alignment", DEFAULT_MAX_ALIGNMENT))
    min_coherence = float(design_raw.get("min_coherence", DEFAULT_MIN_COHERENCE))
    with Session(engine) as session:
        frame = load_frame(
            session,
            judge_model=row["judge_model"],
            strata_keys=strata_keys,
            max_alignment=max_alignment,
            min_coherence=min_coherence,
            max_response_id=design_raw.get("frame_max_response_id"),
            band_edges=tuple(design_raw.get("band_edges") or DEFAULT_BAND_EDGES),
        )
    scores, _ = response_frame(engine, row["judge_model"])
    scores = scores.set_index("response_id")
    responses_t, questions_t = table_of(Response), table_of(Question)
    with engine.connect() as connection:
        question_of = pd.read_sql(
            select(responses_t.c.id.label("response_id"), questions_t.c.key.label("question"))
            .join(questions_t, questions_t.c.id == responses_t.c.question_id)
            .where(responses_t.c.id.in_([int(i) for i in frame.response_ids])),
            connection,
        ).set_index("response_id")["question"]
    ids = pd.Index(frame.response_ids, name="response_id")
    values = [frame.values[name] for name in frame.strata]
    responses = pd.DataFrame(
        {
            "response_id": frame.response_ids,
            "cell": [cell_name(v) for v in values],
            "judge_label": [str(within_cell_stratum(v) or "") for v in values],
            "question": question_of.reindex(ids).astype(str).to_numpy(),
            "alignment": scores["aligned"].reindex(ids).to_numpy(dtype=np.float64),
            "coherence": scores["coherent"].reindex(ids).to_numpy(dtype=np.float64),
        }
    )
    items = _items(engine, study, frames, cant_tell, document)
    design = StudyDesign(
        name=study,
        judge_model=row["judge_model"],
        strata_keys=strata_keys,
        allocation=str(row["allocation"]),
        overlap=int(row["overlap"]),
        seed=int(row["seed"]),
        total=design_raw.get("total"),
        n_strata=len(design_raw.get("strata") or []),
        max_alignment=max_alignment,
        min_coherence=min_coherence,
        n_raters=int(frames.ratings["rater"].nunique()) if len(frames.ratings) else 0,
        n_ratings=len(frames.ratings),
        band_edges=tuple(float(e) for e in design_raw.get("band_edges") or ()),
    )
    return ReportInputs(document, design, responses, items)


def _items(
    engine: Engine, study: str, frames: StudyFrames, cant_tell: CantTellRule, document: dict[str, Any]
) -> pd.DataFrame:
    from emaudit.models import StudyItem

    items_t, studies = table_of(StudyItem), table_of(Study)
    with engine.connect() as connection:
        response_of = dict(
            connection.execute(
                select(items_t.c.id, items_t.c.response_id)
                .join(studies, studies.c.id == items_t.c.study_id)
                .where(studies.c.name == study)
            ).all()
        )
    sample = frames.items[~frames.items["is_gold"].astype(bool)].copy()
    decided = human_labels(frames.ratings, frames.adjudicated).binary(cant_tell)
    sample["human"] = sample["item"].map(decided).astype(np.float64)
    sample["response_id"] = sample["item"].map(response_of)
    sample = sample.rename(columns={"stratum": "judge_label"})
    labelled = {
        (cell["cell"], s["stratum"]): (s["N"], s["n_labelled"])
        for cell in document["cells"]
        for s in cell["strata"]
    }
    sample["weight"] = [
        labelled[(c, h)][0] / labelled[(c, h)][1] if labelled.get((c, h), (0, 0))[1] else np.nan
        for c, h in zip(sample["cell"], sample["judge_label"], strict=True)
    ]
    return sample[["item", "response_id", "cell", "judge_label", "human", "judge_alignment", "weight"]]
