"""Export responses with their cells and judge scores, one row per response."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select
from sqlmodel import Session
from sqlmodel import select as sqlmodel_select

from emaudit.errors import EmauditError
from emaudit.formats import EXPORT_FORMATS
from emaudit.models import Condition, JudgeScore, Question, Response, table_of


def responses_frame(engine: Engine, judge_model: str | None = None) -> pd.DataFrame:
    """Responses joined with their cell, question and scores.

    Columns: ``response_id``, the cell keys (``model``, ``domain``, ...), ``question_set``,
    ``question_id`` (the question's key), ``question``, ``sample_index``, ``answer``,
    ``reasoning``, ``error``, then one column per judge metric (``aligned``, ``coherent``, ...),
    named ``<judge_model>/<metric>`` when several judges are exported. The CSV re-imports with
    ``emaudit responses import --format betley``.
    """
    r, q, s = table_of(Response), table_of(Question), table_of(JudgeScore)
    with engine.connect() as connection:
        responses = pd.read_sql(
            select(
                r.c.id.label("response_id"),
                r.c.condition_id,
                q.c.question_set,
                q.c.key.label("question_id"),
                q.c.text.label("question"),
                r.c.sample_index,
                r.c.text.label("answer"),
                r.c.reasoning,
                r.c.error,
            )
            .join(q, q.c.id == r.c.question_id)
            .order_by(r.c.id),
            connection,
        )
        score_query = select(s.c.id, s.c.response_id, s.c.judge_model.label("judge"), s.c.metric, s.c.score)
        if judge_model:
            score_query = score_query.where(s.c.judge_model == judge_model)
        scores = pd.read_sql(score_query, connection)
    with Session(engine) as session:
        cells = {c.id: c.cell() for c in session.exec(sqlmodel_select(Condition))}
    if responses.empty:
        return responses
    cell_frame = pd.DataFrame([cells[c] for c in responses["condition_id"]], index=responses.index)
    responses = pd.concat(
        [responses[["response_id"]], cell_frame, responses.drop(columns=["response_id", "condition_id"])],
        axis=1,
    )
    if not scores.empty:
        scores = scores.sort_values("id").drop_duplicates(["response_id", "judge", "metric"], keep="last")
        several = scores["judge"].nunique() > 1
        scores["column"] = (scores["judge"] + "/" + scores["metric"]) if several else scores["metric"]
        wide = scores.pivot(index="response_id", columns="column", values="score")
        responses = responses.join(wide, on="response_id")
    return responses


def export_responses(engine: Engine, fmt: str, output: Path | None, judge_model: str | None = None) -> Any:
    """Write :func:`responses_frame` as csv, jsonl or parquet to ``output`` (or return text for stdout)."""
    if fmt not in EXPORT_FORMATS:
        raise EmauditError(f"unknown export format '{fmt}'; choose one of {', '.join(EXPORT_FORMATS)}")
    frame = responses_frame(engine, judge_model)
    if fmt == "parquet":
        if output is None:
            raise EmauditError("parquet is binary: pass --output FILE.parquet")
        frame.to_parquet(output, index=False)
        return None
    text = (
        frame.to_csv(index=False)
        if fmt == "csv"
        else frame.to_json(orient="records", lines=True, force_ascii=False)
    )
    if output is None:
        return text
    output.write_text(text, encoding="utf-8")
    return None
