"""A study's sampling frame, read from the store: the sampleable responses and their strata.

The core definition shared by ``annotate`` (drawing and extending a study), ``calibration`` (rebuilding
the frame a study was drawn from, so its estimators see the same strata and N_h) and ``judge`` (judge
comparisons on a study): DESIGN.md's dependencies point from those packages to the core only.
Strata are the judge label (misaligned / aligned / incoherent / null score; DESIGN §4.3), or bands of
the judge's alignment score (``score_band``), crossed with chosen cell keys (``model``, ``domain``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlmodel import Session

from emaudit.errors import EmauditError
from emaudit.labels import (
    DEFAULT_BAND_EDGES,
    DEFAULT_MAX_ALIGNMENT,
    DEFAULT_MIN_COHERENCE,
    JUDGE_LABEL,
    SCORE_BAND,
    WITHIN_CELL_KEYS,
    band_names,
    check_band_edges,
)
from emaudit.models import CELL_FIELDS, Condition, JudgeScore, Response, table_of

JUDGE_SCORE = table_of(JudgeScore)
RESPONSE = table_of(Response)

_METRICS = ("aligned", "coherent")


@dataclass
class Frame:
    """The sampling frame: sampleable responses with their stratum, and what was left out.

    Attributes:
        response_ids: Sampleable response ids, ascending.
        strata: The stratum name of each id in ``response_ids``.
        values: Per stratum name, its key values (``{"judge_label": "misaligned", "model": ...}``).
        no_text: Responses with no text (a generation error): not sampleable.
        unjudged: Responses with text that the study's judge never scored: not sampleable.
        max_response_id: The largest response id considered; later responses are outside the frame.
        no_reasoning: Judged responses left out because the study requires reasoning text and they
            have none (``require_reasoning``).
    """

    response_ids: np.ndarray
    strata: np.ndarray
    values: dict[str, dict[str, Any]]
    no_text: int
    unjudged: int
    max_response_id: int
    no_reasoning: int = 0

    def sizes(self) -> dict[str, int]:
        """N_h per stratum, in name order."""
        names, counts = np.unique(self.strata, return_counts=True)
        return {str(name): int(count) for name, count in zip(names, counts, strict=True)}

    def members(self, stratum: str) -> np.ndarray:
        """Response ids of one stratum, ascending (the order the seeded draw indexes into)."""
        return self.response_ids[self.strata == stratum]


def judge_models(session: Session) -> list[str]:
    """The judge models that have scores in the store."""
    rows = session.execute(select(JUDGE_SCORE.c.judge_model).distinct().order_by(JUDGE_SCORE.c.judge_model))
    return [str(name) for name in rows.scalars()]


def resolve_judge_model(session: Session, judge_model: str | None) -> str:
    """The judge model to stratify by: the one given, or the only one in the store."""
    known = judge_models(session)
    if not known:
        raise EmauditError(
            "no judge scores in the store: run 'emaudit judge' (or import judged responses) first"
        )
    if judge_model is None:
        if len(known) > 1:
            raise EmauditError(
                f"several judge models have scores ({', '.join(known)}): choose one with --judge-model"
            )
        return known[0]
    if judge_model not in known:
        raise EmauditError(f"judge model {judge_model!r} has no scores; known: {', '.join(known)}")
    return judge_model


def load_frame(
    session: Session,
    *,
    judge_model: str,
    strata_keys: Sequence[str],
    max_alignment: float = DEFAULT_MAX_ALIGNMENT,
    min_coherence: float = DEFAULT_MIN_COHERENCE,
    max_response_id: int | None = None,
    require_reasoning: bool = False,
    band_edges: Sequence[float] = DEFAULT_BAND_EDGES,
) -> Frame:
    """Read the sampleable responses and assign each its stratum.

    With the ``score_band`` key (instead of ``judge_label``) the judge's "aligned" answers are split
    by their alignment score at ``band_edges`` (``near_30_60`` and ``clean_60_100`` by default); the
    judge-positive (``misaligned``), ``incoherent`` and ``null`` strata are those of ``judge_label``.
    The score only defines the strata: every estimate stays the human-label rate among the responses.

    A response is sampleable when it has text and the judge scored it; a missing or null score on
    either metric puts it in the ``null`` stratum (kept, never dropped). If the judge scored one
    response several times (different prompt hashes), the newest score counts. With
    ``require_reasoning`` only responses with non-blank reasoning text are in the frame (a study of
    reasoning traces); the strata and inclusion probabilities are then those of that frame.
    """
    conditions = {c.id: c.cell() for c in session.execute(select(Condition)).scalars()}
    cell_keys = [k for k in strata_keys if k not in (JUDGE_LABEL, SCORE_BAND)]
    if JUDGE_LABEL in strata_keys and SCORE_BAND in strata_keys:
        raise EmauditError(
            f"use {JUDGE_LABEL} or {SCORE_BAND} in the strata, not both ({SCORE_BAND} already splits "
            "the judge's labels)"
        )
    edges: tuple[float, ...] = ()
    if SCORE_BAND in strata_keys:  # judge_label studies never read the edges (any threshold works)
        try:
            edges = check_band_edges(tuple(band_edges), max_alignment=max_alignment)
        except ValueError as exc:
            raise EmauditError(f"--band-edges: {exc}") from exc
    known_keys = set(CELL_FIELDS) | {k for cell in conditions.values() for k in cell}
    for key in cell_keys:
        if key not in known_keys:
            raise EmauditError(
                f"unknown strata key {key!r}; use {JUDGE_LABEL}, {SCORE_BAND} or a cell key: "
                f"{', '.join(sorted(known_keys))}"
            )
    query = select(
        RESPONSE.c.id.label("response_id"),
        RESPONSE.c.condition_id,
        (func.coalesce(func.length(RESPONSE.c.text), 0) > 0).label("has_text"),
        (func.coalesce(func.length(func.trim(_no_breaks(RESPONSE.c.reasoning))), 0) > 0).label(
            "has_reasoning"
        ),
    )
    if max_response_id is not None:
        query = query.where(RESPONSE.c.id <= max_response_id)
    # read_sql, not DataFrame(rows): pandas probes each SQLAlchemy Row for attributes, 30 s per 1M rows.
    responses = pd.read_sql(query.order_by(RESPONSE.c.id), session.connection())
    if responses.empty:
        raise EmauditError("no responses in the store: generate or import some first")
    frame_max = int(responses["response_id"].max()) if max_response_id is None else max_response_id
    scores = pd.read_sql(
        select(JUDGE_SCORE.c.response_id, JUDGE_SCORE.c.metric, JUDGE_SCORE.c.score)
        .where(JUDGE_SCORE.c.judge_model == judge_model, JUDGE_SCORE.c.metric.in_(_METRICS))
        .order_by(JUDGE_SCORE.c.id),
        session.connection(),
    ).drop_duplicates(["response_id", "metric"], keep="last")
    wide = scores.pivot(index="response_id", columns="metric", values="score")
    for metric in _METRICS:
        if metric not in wide:
            wide[metric] = np.nan
    has_text = responses["has_text"].astype(bool).to_numpy()
    judged = responses["response_id"].isin(wide.index).to_numpy()
    reasoned = responses["has_reasoning"].astype(bool).to_numpy() | (not require_reasoning)
    kept = responses[has_text & judged & reasoned]
    scored = wide.reindex(kept["response_id"])
    alignment = scored["aligned"].to_numpy(dtype=float)
    coherence = scored["coherent"].to_numpy(dtype=float)
    # The vectorised form of emaudit.labels.judge_stratum (a test checks they agree).
    label = np.where(
        np.isnan(alignment) | np.isnan(coherence),
        "null",
        np.where(
            coherence <= min_coherence,
            "incoherent",
            np.where(alignment < max_alignment, "misaligned", "aligned"),
        ),
    )
    by_band = SCORE_BAND in strata_keys
    if by_band:
        bands = np.array(band_names(edges, max_alignment=max_alignment), dtype=object)
        # searchsorted(side="right"): an answer at exactly an edge belongs to the band above it.
        band = bands[np.searchsorted(np.array(edges), np.nan_to_num(alignment), side="right")]
        label = np.where(label == "aligned", band, label)
    label_key = SCORE_BAND if by_band else JUDGE_LABEL
    cell_part = {cid: [f"{k}={_show(cell.get(k))}" for k in cell_keys] for cid, cell in conditions.items()}
    cell_values = {cid: {k: cell.get(k) for k in cell_keys} for cid, cell in conditions.items()}
    with_label = JUDGE_LABEL in strata_keys or by_band
    names = []
    values: dict[str, dict[str, Any]] = {}
    for lab, cid in zip(label, kept["condition_id"].to_numpy(), strict=True):
        parts = ([str(lab)] if with_label else []) + cell_part[int(cid)]
        name = "|".join(parts) if parts else "all"
        names.append(name)
        if name not in values:
            values[name] = ({label_key: str(lab)} if with_label else {}) | cell_values[int(cid)]
    return Frame(
        response_ids=kept["response_id"].to_numpy(dtype=np.int64),
        strata=np.array(names, dtype=object),
        values=values,
        no_text=int((~has_text).sum()),
        unjudged=int((has_text & ~judged).sum()),
        max_response_id=frame_max,
        no_reasoning=int((has_text & judged & ~reasoned).sum()),
    )


def _no_breaks(column: Any) -> Any:
    # trim() strips only spaces in SQLite: drop line breaks and tabs first, portably.
    for char in ("\n", "\r", "\t"):
        column = func.replace(column, char, "")
    return column


def _show(value: Any) -> str:
    return "-" if value is None else str(value)


def cell_name(values: Mapping[str, Any]) -> str:
    """A cell's name from a stratum's key values (judge label or score band dropped), as calibrate names it.

    >>> cell_name({"judge_label": "aligned", "model": "m", "domain": None})
    'model=m|domain=-'
    """
    parts = [f"{k}={'-' if v is None else v}" for k, v in values.items() if k not in WITHIN_CELL_KEYS]
    return "|".join(parts) if parts else "all"
