"""What judges the store holds: one row per (judge, metric, prompt template, mode)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, case, func, select

from emaudit.models import JudgeScore, table_of

__all__ = ["JudgeInventoryRow", "judge_inventory"]


@dataclass(frozen=True)
class JudgeInventoryRow:
    """Verdicts of one judge label for one metric, prompt template and mode.

    Attributes:
        judge_model: The stored label (``JudgeScore.judge_model``).
        metric / prompt_hash: The judge prompt (sha256 of its template).
        mode / samples: ``logprobs``, ``sampled`` (with k) or None (rows from before provenance
            was recorded, or imported scores).
        verdicts / scored / null / errors: Rows, rows with a score, rows with CODE / REFUSAL /
            UNPARSEABLE and no error, rows with a request error.
        requested_models / reported_models: Distinct models sent and named in responses.
    """

    judge_model: str
    metric: str
    prompt_hash: str
    mode: str | None
    samples: int | None
    verdicts: int
    scored: int
    null: int
    errors: int
    requested_models: tuple[str, ...]
    reported_models: tuple[str, ...]

    @property
    def mode_text(self) -> str:
        """``logprobs``, ``sampled k=10`` or ``-``."""
        if self.mode == "sampled":
            return f"sampled k={self.samples}"
        return self.mode or "-"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields."""
        return asdict(self) | {
            "requested_models": list(self.requested_models),
            "reported_models": list(self.reported_models),
        }


def judge_inventory(engine: Engine) -> list[JudgeInventoryRow]:
    """One :class:`JudgeInventoryRow` per (judge, metric, prompt hash, mode, k), sorted."""
    t = table_of(JudgeScore)
    keys = (t.c.judge_model, t.c.metric, t.c.prompt_hash, t.c.mode, t.c.samples)
    counts = (
        select(
            *keys,
            func.count(),
            func.count(t.c.score),
            func.sum(case((t.c.score.is_(None) & t.c.error.is_(None), 1), else_=0)),
            func.count(t.c.error),
        )
        .group_by(*keys)
        .order_by(*keys)
    )
    models = select(*keys, t.c.requested_model, t.c.reported_model).distinct()
    with engine.connect() as connection:
        groups = connection.execute(counts).all()
        seen: dict[tuple[Any, ...], tuple[set[str], set[str]]] = {}
        for *key, requested, reported in connection.execute(models):
            requested_set, reported_set = seen.setdefault(tuple(key), (set(), set()))
            if requested:
                requested_set.add(requested)
            if reported:
                reported_set.add(reported)
    rows = []
    for judge_model, metric, phash, mode, samples, verdicts, scored, null, errors in groups:
        requested_set, reported_set = seen.get((judge_model, metric, phash, mode, samples), (set(), set()))
        rows.append(
            JudgeInventoryRow(
                judge_model,
                metric,
                phash or "",
                mode,
                samples,
                int(verdicts),
                int(scored),
                int(null or 0),
                int(errors),
                tuple(sorted(requested_set)),
                tuple(sorted(reported_set)),
            )
        )
    return rows
