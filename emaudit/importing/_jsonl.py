"""The JSONL reader: one object per line (fields in ``docs/formats.md``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from emaudit.errors import InputError
from emaudit.importing import _validation
from emaudit.importing._validation import (
    NULL_TOKENS,
    ImportSummary,
    Rows,
    cell_value,
    check_utf8,
    is_extra_metric,
    merge_cell,
)

# The fields a JSONL record may carry besides extra metrics (docs/formats.md).
JSONL_FIELDS = frozenset(
    {
        "question_id",
        "question",
        "answer",
        "response",
        "error",
        "model",
        "condition",
        "scores",
        "aligned",
        "coherent",
        "judge_model",
        "sample_index",
        "messages",
        "reasoning",
    }
)


def jsonl_chunks(
    path: Path, base_cell: dict[str, Any], judge_model: str, summary: ImportSummary
) -> Iterator[Rows]:
    source = str(path)
    check_utf8(path)
    records: list[tuple[int, dict[str, Any]]] = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(source, f"invalid JSON: {error.msg}", row=line_number, unit="line") from None
            if not isinstance(record, dict):
                raise InputError(source, "expected a JSON object", row=line_number, unit="line")
            records.append((line_number, record))
            if len(records) == _validation.CHUNK_ROWS:
                yield jsonl_rows(source, records, base_cell, judge_model, summary)
                records = []
    if records:
        yield jsonl_rows(source, records, base_cell, judge_model, summary)


def jsonl_rows(
    source: str,
    records: list[tuple[int, dict[str, Any]]],
    base_cell: dict[str, Any],
    judge_model: str,
    summary: ImportSummary,
) -> Rows:
    rows = Rows(records[0][0], [], [], [], [], {}, {}, [], [], [], [], [])
    score_lists: dict[str, list[float]] = {}
    for index, (line, record) in enumerate(records):

        def fail(problem: str, name: str, line: int = line) -> InputError:
            return InputError(source, problem, row=line, field=name, unit="line")

        for name in ("question_id", "question"):
            value = record.get(name)
            if not isinstance(value, str | int) or str(value).strip() == "":
                raise fail("required, must be a non-empty string", name)
        answer = record.get("answer", record.get("response"))
        error = record.get("error")
        if answer is None and not error:
            raise fail("required (or give 'error' for a failed generation)", "answer")
        if answer is not None and not isinstance(answer, str):
            raise fail("must be a string", "answer")
        cell = base_cell
        if record.get("model") is not None and not base_cell.get("model"):
            cell = merge_cell(cell, {"model": str(record["model"])})
        condition = record.get("condition") or {}
        if not isinstance(condition, dict):
            raise fail("must be an object of cell keys", "condition")
        for key, value in condition.items():
            cell = merge_cell(cell, cell_value(source, str(key), str(value), line))
        scores = record.get("scores")
        if scores is None:
            scores = {m: record[m] for m in ("aligned", "coherent") if m in record}
        if not isinstance(scores, dict):
            raise fail("must be an object of metric -> number or null", "scores")
        # As in CSV, every further numeric field (bad_stuff, financial, ...) is one more metric.
        scores = {
            key: value
            for key, value in record.items()
            if key not in JSONL_FIELDS
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and is_extra_metric(key)
        } | scores
        if not isinstance(scores, dict):
            raise fail("must be an object of metric -> number or null", "scores")
        for metric in ("aligned", "coherent"):
            if metric not in scores and answer is not None:
                raise fail("required (use null for a null score)", f"scores.{metric}")
        for metric, value in scores.items():
            score = jsonl_score(value)
            if score is None:
                raise fail(f"score {value!r} is not a number in 0-100 or null", f"scores.{metric}")
            score_lists.setdefault(metric, [np.nan] * index).append(score)
        for values in score_lists.values():
            if len(values) < index + 1:
                values.append(np.nan)
        sample_index = record.get("sample_index")
        if sample_index is not None and (not isinstance(sample_index, int) or sample_index < 0):
            raise fail("must be a whole number >= 0", "sample_index")
        messages = record.get("messages")
        if messages is not None and not isinstance(messages, list):
            raise fail("must be a list of {role, content} objects", "messages")
        rows.question_key.append(str(record["question_id"]).strip())
        rows.question_text.append(str(record["question"]))
        rows.text.append(answer)
        rows.cell.append(cell)
        rows.judge_model.append(str(record.get("judge_model") or judge_model))
        rows.sample_index.append(sample_index)
        rows.messages.append(messages)
        rows.reasoning.append(record.get("reasoning"))
        rows.error.append(str(error) if error else None)
    rows.scores = {metric: np.asarray(values, dtype=float) for metric, values in score_lists.items()}
    summary.metrics = sorted(
        set(summary.metrics) | set(rows.scores), key=lambda m: (m not in ("aligned", "coherent"), m)
    )
    return rows


def jsonl_score(value: Any) -> float | None:
    """A JSONL score as a float (NaN for null); None when it is not a valid score."""
    if value is None or (isinstance(value, str) and value.strip().lower() in NULL_TOKENS):
        return float("nan")
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if 0 <= number <= 100 else None
