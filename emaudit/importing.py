"""Import answers that were generated and judged elsewhere.

Formats (``--format``; ``auto`` looks at the file):

* ``betley`` — CSV with ``question, answer, question_id, aligned, coherent`` (Betley et al. 2025
  ``eval.py`` output). A ``model`` column sets the model per row, ``group`` becomes a cell key,
  ``judge_<metric>`` columns (the judge's raw probabilities) are kept verbatim with that metric.
* ``organisms`` — CSV with ``response, question, question_id, aligned, coherent`` (Turner, Soligo
  et al. 2025); every further numeric column (``financial``, ``bad_stuff``, ...) is kept as one more
  judge metric.
* ``jsonl`` — one object per line; the fields are documented in ``docs/formats.md``.

In both CSV formats, columns named after a cell field (``domain``, ``n_shots``, ``seed``,
``instruction``, ``reasoning``, ``prompt_format``, ``endpoint``) set that field per row.

An empty or ``None`` score is a *null* score (the judge put < 0.25 of its probability on numbers,
answering CODE or REFUSAL): it is stored and counted, never dropped. A file is imported in one
transaction: any bad row stores nothing from that file, and re-importing a file stores nothing new.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Connection, Engine, Table, func, select, tuple_

from emaudit.errors import InputError
from emaudit.formats import DEFAULT_IMPORT_JUDGE, IMPORT_FORMATS
from emaudit.models import (
    CELL_FIELDS,
    Condition,
    JudgeScore,
    Question,
    Response,
    condition_key,
    table_of,
    utcnow,
)

IMPORTED_QUESTION_SET = "imported"
IMPORTED_PROMPT_HASH = "imported"

_NULL_TOKENS = frozenset({"", "none", "null", "nan", "na", "n/a"})
_CHUNK_ROWS = 20_000
_CSV_BLOCK_BYTES = 1 << 20  # larger blocks make pyarrow hold several times more memory
_ID_COLUMNS = frozenset({"response_id", "id", "index", "sample_index", "row", "unnamed: 0", "question_row"})
_INT_CELL_FIELDS = frozenset({"n_shots", "seed"})
_ROW_CELL_COLUMNS = frozenset(CELL_FIELDS) - {"model"} | {"group"}
_TEXT_COLUMNS = {"betley": "answer", "organisms": "response"}


@dataclass
class ImportSummary:
    """What one file import did."""

    path: str
    format: str
    rows: int = 0
    new_responses: int = 0
    new_scores: int = 0
    null_scores: Counter[str] = field(default_factory=Counter)
    metrics: list[str] = field(default_factory=list)
    cells: list[dict[str, Any]] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


@dataclass
class _Rows:
    """One validated chunk of a file, in a format-independent shape."""

    first_row: int
    question_key: list[str]
    question_text: list[str]
    text: list[str | None]
    cell: list[dict[str, Any]]
    scores: dict[str, np.ndarray]
    raw: dict[str, list[str | None]]
    judge_model: list[str]
    sample_index: list[int | None]
    messages: list[list[dict[str, Any]] | None]
    reasoning: list[str | None]
    error: list[str | None]


def detect_format(path: Path) -> str:
    """Guess the format from the extension and, for CSV, the header."""
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return "jsonl"
    names = {name.strip() for name in _csv_header(path)}
    if "response" in names:
        return "organisms"
    if "answer" in names:
        return "betley"
    raise InputError(
        str(path),
        "cannot tell the format: expected a .jsonl file or a CSV with an 'answer' (betley) or 'response' "
        "(organisms) column; pass --format",
    )


def _csv_header(path: Path) -> list[str]:
    """The header row's column names, as written."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError:
        _check_utf8(path)
        raise
    except csv.Error as error:
        raise InputError(str(path), f"not a readable CSV: {error}") from None
    if not header or not any(name.strip() for name in header):
        raise InputError(str(path), "not a readable CSV: no header row")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise InputError(str(path), f"duplicate column name '{duplicates[0]}' in the header")
    return header


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _check_utf8(path: Path) -> None:
    """Raise an InputError naming the line of the first byte that is not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as error:
                line += block[: error.start].count(b"\n")
                raise InputError(
                    str(path), "not UTF-8 text; re-save the file as UTF-8", row=line, unit="line"
                ) from None
            line += block.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise InputError(str(path), "not UTF-8 text (truncated character at the end)") from None


def parse_condition_options(pairs: list[str]) -> dict[str, Any]:
    """Turn ``KEY=VALUE`` options into cell fields (known fields typed, the rest in ``extra``)."""
    fields: dict[str, Any] = {"extra": {}}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError("--condition", f"expected KEY=VALUE, got '{pair}'")
        fields.update(_cell_value("--condition", key, value.strip(), None))
    return fields


def _cell_value(source: str, key: str, value: str, row: int | None) -> dict[str, Any]:
    if key == "model":
        return {"model": value}
    if key in _INT_CELL_FIELDS:
        try:
            return {key: int(value)}
        except ValueError:
            raise InputError(source, f"'{value}' is not a whole number", row=row, field=key) from None
    if key == "reasoning":
        lowered = value.lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise InputError(source, f"'{value}' is not true/false", row=row, field=key)
        return {key: lowered in ("true", "1", "yes", "on")}
    if key in CELL_FIELDS:
        return {key: value}
    return {"extra": {key: value}}


def _merge_cell(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = {k: v for k, v in base.items() if k != "extra"} | {
        k: v for k, v in update.items() if k != "extra"
    }
    merged["extra"] = dict(base.get("extra") or {}) | dict(update.get("extra") or {})
    return merged


def _parse_scores(source: str, column: str, values: pd.Series, first_row: int) -> np.ndarray:
    """Parse a score column: numbers in [0, 100]; empty/None are null (NaN)."""
    stripped = values.fillna("").astype(str).str.strip()
    is_null = stripped.str.lower().isin(_NULL_TOKENS)
    numbers = pd.to_numeric(stripped.where(~is_null), errors="coerce").to_numpy(dtype=float)
    bad = np.isnan(numbers) & ~is_null.to_numpy()
    if bad.any():
        index = int(np.argmax(bad))
        raise InputError(
            source, f"score '{stripped.iloc[index]}' is not a number", row=first_row + index, field=column
        )
    outside = ~np.isnan(numbers) & ((numbers < 0) | (numbers > 100))
    if outside.any():
        index = int(np.argmax(outside))
        raise InputError(
            source, f"score {numbers[index]:g} is outside 0-100", row=first_row + index, field=column
        )
    return numbers


def _is_numeric_column(values: pd.Series) -> bool:
    stripped = values.fillna("").astype(str).str.strip()
    present = stripped[~stripped.str.lower().isin(_NULL_TOKENS)]
    return bool(len(present)) and bool(pd.to_numeric(present, errors="coerce").notna().all())


def _csv_chunks(
    path: Path, fmt: str, base_cell: dict[str, Any], judge_model: str, summary: ImportSummary
) -> Iterator[_Rows]:
    source = str(path)
    header = _csv_header(path)
    text_column = _TEXT_COLUMNS[fmt]
    required = ["question", text_column, "question_id", "aligned", "coherent"]
    missing = [c for c in required if c not in {name.strip() for name in header}]
    if missing:
        raise InputError(
            source,
            f"missing column(s) {', '.join(repr(c) for c in missing)} for the {fmt} format",
            field=missing[0],
        )
    metrics: list[str] | None = None
    first_row = 1
    try:
        # pyarrow's streaming reader parses several times faster than pandas' and keeps memory flat;
        # every column is read as text so that a bad score is reported with its row, not a type error.
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(block_size=_CSV_BLOCK_BYTES),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in header}, strings_can_be_null=False
            ),
        )
        for chunk in _arrow_chunks(reader):
            chunk.columns = [str(c).strip() for c in chunk.columns]
            if metrics is None:
                metrics, ignored = _csv_metric_columns(chunk, fmt, [c.strip() for c in header])
                summary.metrics, summary.ignored_columns = metrics, ignored
            yield _csv_rows(source, chunk, fmt, metrics, base_cell, judge_model, first_row)
            first_row += len(chunk)
    except pa.ArrowInvalid as error:
        if "UTF8" in str(error) or "UTF-8" in str(error):
            _check_utf8(path)
        raise InputError(source, f"not a readable CSV: {_first_line(error)[:200]}") from None


def _arrow_chunks(reader: pa_csv.CSVStreamingReader) -> Iterator[pd.DataFrame]:
    """Gather the reader's small record batches into DataFrames of about ``_CHUNK_ROWS`` rows."""
    batches: list[pa.RecordBatch] = []
    rows = 0
    for batch in reader:
        batches.append(batch)
        rows += batch.num_rows
        if rows >= _CHUNK_ROWS:
            yield pa.Table.from_batches(batches).to_pandas()
            batches, rows = [], 0
    if batches:
        yield pa.Table.from_batches(batches).to_pandas()


def _csv_metric_columns(chunk: pd.DataFrame, fmt: str, header: list[str]) -> tuple[list[str], list[str]]:
    known = {"question", _TEXT_COLUMNS[fmt], "question_id", "model", "reasoning_text", "error"}
    metrics = ["aligned", "coherent"]
    ignored = []
    for column in header:
        lowered = column.lower()
        if column in known or column in metrics or column in _ROW_CELL_COLUMNS:
            continue
        if lowered.startswith("judge_") and column[len("judge_") :] in header:
            continue  # raw judge probabilities, kept with their metric
        if lowered in _ID_COLUMNS or lowered.endswith("_binary") or not _is_numeric_column(chunk[column]):
            ignored.append(column)
            continue
        metrics.append(column)
    return metrics, ignored


def _csv_rows(
    source: str,
    chunk: pd.DataFrame,
    fmt: str,
    metrics: list[str],
    base_cell: dict[str, Any],
    judge_model: str,
    first_row: int,
) -> _Rows:
    n = len(chunk)
    for column in ("question_id", "question"):
        blank = chunk[column].str.strip() == ""
        if blank.any():
            raise InputError(
                source, "empty value", row=first_row + int(np.argmax(blank.to_numpy())), field=column
            )
    row_cell_columns = [c for c in chunk.columns if c in _ROW_CELL_COLUMNS or c == "model"]
    if row_cell_columns:
        cells = []
        for offset, values in enumerate(chunk[row_cell_columns].itertuples(index=False, name=None)):
            cell = base_cell
            for column, value in zip(row_cell_columns, values, strict=True):
                if column == "model" and base_cell.get("model"):
                    continue  # --model wins over the file's column
                if str(value).strip():
                    cell = _merge_cell(
                        cell, _cell_value(source, column, str(value).strip(), first_row + offset)
                    )
            cells.append(cell)
    else:
        cells = [base_cell] * n
    scores = {metric: _parse_scores(source, metric, chunk[metric], first_row) for metric in metrics}
    raw = {
        metric: [v or None for v in chunk[f"judge_{metric}"].tolist()]
        for metric in metrics
        if f"judge_{metric}" in chunk.columns
    }
    text = chunk[_TEXT_COLUMNS[fmt]].tolist()
    error_values = chunk["error"].tolist() if "error" in chunk.columns else [None] * n
    return _Rows(
        first_row=first_row,
        question_key=chunk["question_id"].str.strip().tolist(),
        question_text=chunk["question"].tolist(),
        text=[t if not (e and not t) else None for t, e in zip(text, error_values, strict=True)],
        cell=cells,
        scores=scores,
        raw=raw,
        judge_model=[judge_model] * n,
        sample_index=[None] * n,
        messages=[None] * n,
        reasoning=[t or None for t in chunk["reasoning_text"].tolist()]
        if "reasoning_text" in chunk
        else [None] * n,
        error=[e or None for e in error_values],
    )


def _jsonl_chunks(
    path: Path, base_cell: dict[str, Any], judge_model: str, summary: ImportSummary
) -> Iterator[_Rows]:
    source = str(path)
    _check_utf8(path)
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
            if len(records) == _CHUNK_ROWS:
                yield _jsonl_rows(source, records, base_cell, judge_model, summary)
                records = []
    if records:
        yield _jsonl_rows(source, records, base_cell, judge_model, summary)


def _jsonl_rows(
    source: str,
    records: list[tuple[int, dict[str, Any]]],
    base_cell: dict[str, Any],
    judge_model: str,
    summary: ImportSummary,
) -> _Rows:
    rows = _Rows(records[0][0], [], [], [], [], {}, {}, [], [], [], [], [])
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
            cell = _merge_cell(cell, {"model": str(record["model"])})
        condition = record.get("condition") or {}
        if not isinstance(condition, dict):
            raise fail("must be an object of cell keys", "condition")
        for key, value in condition.items():
            cell = _merge_cell(cell, _cell_value(source, str(key), str(value), line))
        scores = record.get("scores")
        if scores is None:
            scores = {m: record[m] for m in ("aligned", "coherent") if m in record}
        if not isinstance(scores, dict):
            raise fail("must be an object of metric -> number or null", "scores")
        for metric in ("aligned", "coherent"):
            if metric not in scores and answer is not None:
                raise fail("required (use null for a null score)", f"scores.{metric}")
        for metric, value in scores.items():
            score = _jsonl_score(value)
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


def _jsonl_score(value: Any) -> float | None:
    """A JSONL score as a float (NaN for null); None when it is not a valid score."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _NULL_TOKENS):
        return float("nan")
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if 0 <= number <= 100 else None


def _insert_ignore(
    connection: Connection, table: Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """``INSERT ... ON CONFLICT DO NOTHING`` through the driver's executemany.

    Hundreds of thousands of rows go in per file; building one SQLAlchemy parameter dict per row
    costs more than the insert itself, so values are passed as tuples, already in driver form.
    """
    if not rows:
        return
    quote = connection.dialect.identifier_preparer.quote
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join([marker] * len(columns))}) ON CONFLICT DO NOTHING"
    )
    connection.exec_driver_sql(sql, rows)


class _Writer:
    """Writes validated rows into the store inside one connection's transaction."""

    def __init__(self, connection: Connection, question_set: str | None, source_name: str) -> None:
        self.connection = connection
        self.question_set = question_set
        self.source_name = source_name
        self.questions: dict[str, int] = {}
        self.conditions: dict[str, int] = {}
        self.cells: dict[str, dict[str, Any]] = {}
        self.next_index: Counter[tuple[int, int]] = Counter()
        # (cell, question, sample) -> (response id, answer) of rows stored before this import
        self.stored: dict[tuple[int, int, int], tuple[int, str | None]] = {}
        now = utcnow()
        # SQLAlchemy's SQLite DATETIME text form, formatted once instead of once per row by the driver
        self.created_at: Any = (
            now.strftime("%Y-%m-%d %H:%M:%S.%f") if connection.dialect.name == "sqlite" else now
        )

    def question_id(self, key: str, text: str) -> int:
        if key in self.questions:
            return self.questions[key]
        table = table_of(Question)
        query = select(table.c.id, table.c.question_set).where(table.c.key == key)
        if self.question_set:
            query = query.where(table.c.question_set == self.question_set)
        found = self.connection.execute(query).all()
        if len(found) > 1:
            preferred = [row for row in found if row.question_set == IMPORTED_QUESTION_SET]
            if len(preferred) != 1:
                sets = ", ".join(sorted(row.question_set for row in found))
                raise InputError(
                    self.source_name, f"question id '{key}' is in several sets ({sets}): pass --set"
                )
            found = preferred
        if found:
            self.questions[key] = found[0].id
        else:
            result = self.connection.execute(
                table.insert().values(
                    question_set=self.question_set or IMPORTED_QUESTION_SET,
                    key=key,
                    text=text,
                    source=self.source_name,
                )
            )
            self.questions[key] = _inserted_id(result)
        return self.questions[key]

    def condition_id(self, cell: dict[str, Any]) -> int:
        key = condition_key(cell)
        if key in self.conditions:
            return self.conditions[key]
        table = table_of(Condition)
        found = self.connection.execute(select(table.c.id).where(table.c.key == key)).scalar()
        if found is None:
            values = {name: cell[name] for name in CELL_FIELDS if cell.get(name) is not None}
            values.setdefault("n_shots", 0)
            values.setdefault("instruction", "none")
            values.setdefault("reasoning", False)
            found = _inserted_id(
                self.connection.execute(
                    table.insert().values(key=key, extra=cell.get("extra") or None, **values)
                )
            )
        else:
            # The cell already has answers: remember them, so that a different answer under the same
            # (cell, question, sample) is an error instead of being silently skipped as a duplicate.
            responses = table_of(Response)
            for response_id, question_id, sample_index, text in self.connection.execute(
                select(
                    responses.c.id, responses.c.question_id, responses.c.sample_index, responses.c.text
                ).where(responses.c.condition_id == found)
            ):
                self.stored[(found, question_id, sample_index)] = (response_id, text)
        self.conditions[key] = found
        self.cells[key] = cell
        return found

    def write(self, rows: _Rows) -> list[tuple[int, int, int]]:
        """Insert a chunk's questions, cells and responses; return their (cell, question, sample) keys."""
        if not rows.text:
            return []  # an empty executemany would insert one row of defaults
        by_object: dict[int, int] = {}  # rows mostly share one cell dict; skip re-keying each row
        condition_ids = [
            by_object[id(cell)]
            if id(cell) in by_object
            else by_object.setdefault(id(cell), self.condition_id(cell))
            for cell in rows.cell
        ]
        question_ids = [
            self.question_id(k, t) for k, t in zip(rows.question_key, rows.question_text, strict=True)
        ]
        sample_indexes: list[int] = []
        for condition_id, question_id, explicit in zip(
            condition_ids, question_ids, rows.sample_index, strict=True
        ):
            if explicit is None:
                explicit = self.next_index[(condition_id, question_id)]
            self.next_index[(condition_id, question_id)] = max(
                self.next_index[(condition_id, question_id)], explicit + 1
            )
            sample_indexes.append(explicit)
        for offset, (c, q, s, t) in enumerate(
            zip(condition_ids, question_ids, sample_indexes, rows.text, strict=True)
        ):
            if (c, q, s) in self.stored and self.stored[(c, q, s)][1] != t:
                raise InputError(
                    self.source_name,
                    f"cell {condition_key(rows.cell[offset])} already holds a different answer for question "
                    f"'{rows.question_key[offset]}' sample {s}; import this file as another cell "
                    "(e.g. --condition batch=2)",
                    row=rows.first_row + offset,
                )
        _insert_ignore(
            self.connection,
            table_of(Response),
            (
                "condition_id",
                "question_id",
                "sample_index",
                "messages",
                "text",
                "reasoning",
                "error",
                "attempts",
                "source",
                "created_at",
            ),
            [
                (
                    c,
                    q,
                    s,
                    None if m is None else json.dumps(m),  # drivers take JSON columns as text
                    t,
                    r,
                    e,
                    0,
                    f"{self.source_name}:{rows.first_row + i}",
                    self.created_at,
                )
                for i, (c, q, s, m, t, r, e) in enumerate(
                    zip(
                        condition_ids,
                        question_ids,
                        sample_indexes,
                        rows.messages,
                        rows.text,
                        rows.reasoning,
                        rows.error,
                        strict=True,
                    )
                )
            ],
        )
        return list(zip(condition_ids, question_ids, sample_indexes, strict=True))


def import_responses(
    engine: Engine,
    path: Path,
    *,
    fmt: str = "auto",
    model: str | None = None,
    condition: list[str] | None = None,
    judge_model: str = DEFAULT_IMPORT_JUDGE,
    question_set: str | None = None,
    on_rows: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import one file of judged answers (see the module docstring for formats).

    Args:
        engine: The store.
        path: CSV or JSONL file.
        fmt: One of :data:`emaudit.formats.IMPORT_FORMATS`.
        model: Model name for every row (default: a ``model`` column, else the file's stem).
        condition: ``KEY=VALUE`` cell fields applied to every row (``domain=medical``, ``n_shots=16``).
        judge_model: Judge that produced the scores (default ``gpt-4o``).
        question_set: Question set to attach questions to (default: match by id, else ``imported``).
        on_rows: Called with the number of rows read after each chunk (for progress bars).

    Raises:
        InputError: a one-line message naming the file, row and field; nothing is stored.
    """
    source = str(path)
    if not path.exists():
        raise InputError(source, "no such file")
    if path.is_dir():
        raise InputError(source, "is a folder; name the files (or a --pattern for the folder)")
    if fmt not in IMPORT_FORMATS:
        raise InputError(source, f"unknown format '{fmt}'; choose one of {', '.join(IMPORT_FORMATS)}")
    if fmt == "auto":
        fmt = detect_format(path)
    summary = ImportSummary(path=source, format=fmt)
    base_cell = parse_condition_options(condition or [])
    if model:
        base_cell["model"] = model
    chunks = (
        _jsonl_chunks(path, base_cell, judge_model, summary)
        if fmt == "jsonl"
        else _csv_chunks(path, fmt, _with_default_model(base_cell, path), judge_model, summary)
    )
    response_table, score_table = table_of(Response), table_of(JudgeScore)
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection = connection.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            before_responses = connection.execute(
                select(func.count()).select_from(response_table)
            ).scalar_one()
            before_scores = connection.execute(select(func.count()).select_from(score_table)).scalar_one()
            writer = _Writer(connection, question_set, path.name)
            newest_id = connection.execute(select(func.max(response_table.c.id))).scalar_one() or 0
            for rows in _prefetch(chunks):
                if fmt == "jsonl":
                    rows.cell = [
                        c if c.get("model") else _merge_cell(c, {"model": path.stem}) for c in rows.cell
                    ]
                keys = writer.write(rows)
                response_ids, newest_id = _response_ids(connection, writer, keys, newest_id)
                _write_scores(connection, rows, response_ids, writer.created_at, summary)
                summary.rows += len(keys)
                if on_rows is not None:
                    on_rows(len(keys))
            if summary.rows == 0:
                raise InputError(source, "no rows to import")
            after_responses = connection.execute(
                select(func.count()).select_from(response_table)
            ).scalar_one()
            after_scores = connection.execute(select(func.count()).select_from(score_table)).scalar_one()
    summary.new_responses = after_responses - before_responses
    summary.new_scores = after_scores - before_scores
    summary.cells = [writer.cells[key] for key in writer.conditions]
    return summary


def _with_default_model(cell: dict[str, Any], path: Path) -> dict[str, Any]:
    if cell.get("model") or "model" in {name.strip() for name in _csv_header(path)}:
        return cell
    return _merge_cell(cell, {"model": path.stem})


def _inserted_id(result: Any) -> int:
    primary_key = result.inserted_primary_key
    assert primary_key is not None
    return int(primary_key[0])


def _response_ids(
    connection: Connection, writer: _Writer, keys: list[tuple[int, int, int]], newest_id: int
) -> tuple[list[int], int]:
    """The response ids of a chunk's (cell, question, sample) keys, and the newest id seen so far.

    Scores are written chunk by chunk, so memory stays flat in the file's length. Rows inserted by
    this chunk have ids above ``newest_id`` (ids only grow); rows stored before the import are in
    the writer's cache; a key repeated from an earlier chunk of the same file is looked up.
    """
    if not keys:
        return [], newest_id
    # Raw driver rows: building a SQLAlchemy Row per response costs more than the query.
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    conditions = sorted({c for c, _, _ in keys})
    cursor = connection.exec_driver_sql(
        "SELECT condition_id, question_id, sample_index, id FROM response "
        f"WHERE id > {marker} AND condition_id IN ({', '.join([marker] * len(conditions))})",
        (newest_id, *conditions),
    ).cursor
    assert cursor is not None
    found = {(c, q, s): i for c, q, s, i in cursor.fetchall()}
    newest_id = max([newest_id, *found.values()])
    for key in keys:
        if key not in found and key in writer.stored:
            found[key] = writer.stored[key][0]
    missing = [key for key in keys if key not in found]
    if missing:
        table = table_of(Response)
        columns = (table.c.condition_id, table.c.question_id, table.c.sample_index)
        for c, q, s, i in connection.execute(
            select(*columns, table.c.id).where(tuple_(*columns).in_(missing))
        ):
            found[(c, q, s)] = i
    return [found[key] for key in keys], newest_id


def _write_scores(
    connection: Connection, rows: _Rows, response_ids: list[int], created_at: Any, summary: ImportSummary
) -> None:
    """Insert a chunk's judge scores (a null score is stored as such) and count its nulls."""
    records: list[tuple[Any, ...]] = []
    for metric, values in rows.scores.items():
        raw_values = rows.raw.get(metric) or [None] * len(response_ids)
        is_null = np.isnan(values)
        summary.null_scores[metric] += int(is_null.sum())
        scores_or_none = [
            None if null else value for null, value in zip(is_null, values.tolist(), strict=True)
        ]
        records.extend(
            zip(
                response_ids,
                rows.judge_model,
                [metric] * len(response_ids),
                scores_or_none,
                raw_values,
                [IMPORTED_PROMPT_HASH] * len(response_ids),
                [created_at] * len(response_ids),
                strict=True,
            )
        )
    _insert_ignore(
        connection,
        table_of(JudgeScore),
        ("response_id", "judge_model", "metric", "score", "raw", "prompt_hash", "created_at"),
        records,
    )


def _prefetch(chunks: Iterator[_Rows], depth: int = 2) -> Iterator[_Rows]:
    """Parse and validate the next chunks in a thread while the current one is written.

    pyarrow's parser and SQLite's inserts both release the GIL, so the two overlap; an error in
    the file surfaces here, in the caller's thread, at the chunk where it was found.
    """
    queue: Queue[tuple[_Rows | None, BaseException | None]] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for rows in chunks:
                if stop.is_set():
                    return
                queue.put((rows, None))
            queue.put((None, None))
        except BaseException as error:  # re-raised in the consumer
            queue.put((None, error))

    worker = threading.Thread(target=produce, name="emaudit-import-reader", daemon=True)
    worker.start()
    interrupted = False
    try:
        while True:
            rows, error = queue.get()
            if error is not None:
                raise error
            if rows is None:
                return
            yield rows
    except KeyboardInterrupt:
        # The reader may be blocked reading a pipe that never ends; it is a daemon thread, so
        # Ctrl-C must not wait for it.
        interrupted = True
        raise
    finally:
        stop.set()
        while worker.is_alive() and not interrupted:  # unblock a producer waiting on a full queue
            with contextlib.suppress(Empty):
                queue.get(timeout=0.05)
