"""The CSV reader: Betley et al. ``eval.py`` and model-organisms files, streamed through pyarrow."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from emaudit.errors import InputError
from emaudit.importing import _validation
from emaudit.importing._validation import (
    NULL_TOKENS,
    ROW_CELL_COLUMNS,
    ImportSummary,
    Rows,
    cell_value,
    check_utf8,
    first_line,
    is_extra_metric,
    merge_cell,
)

CSV_BLOCK_BYTES = 1 << 20  # larger blocks make pyarrow hold several times more memory


TEXT_COLUMNS = {"betley": "answer", "organisms": "response"}


def detect_format(path: Path) -> str:
    """Guess the format from the extension and, for CSV, the header."""
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return "jsonl"
    names = {name.strip() for name in csv_header(path)}
    if "response" in names:
        return "organisms"
    if "answer" in names:
        return "betley"
    raise InputError(
        str(path),
        "cannot tell the format: expected a .jsonl file or a CSV with an 'answer' (betley) or 'response' "
        "(organisms) column; pass --format",
    )


def csv_header(path: Path) -> list[str]:
    """The header row's column names, as written."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError:
        check_utf8(path)
        raise
    except csv.Error as error:
        raise InputError(str(path), f"not a readable CSV: {error}") from None
    if not header or not any(name.strip() for name in header):
        raise InputError(str(path), "not a readable CSV: no header row")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise InputError(str(path), f"duplicate column name '{duplicates[0]}' in the header")
    return header


def parse_scores(source: str, column: str, values: pd.Series, first_row: int) -> np.ndarray:
    """Parse a score column: numbers in [0, 100]; empty/None are null (NaN)."""
    stripped = values.fillna("").astype(str).str.strip()
    is_null = stripped.str.lower().isin(NULL_TOKENS)
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


def is_numeric_column(values: pd.Series) -> bool:
    stripped = values.fillna("").astype(str).str.strip()
    present = stripped[~stripped.str.lower().isin(NULL_TOKENS)]
    return bool(len(present)) and bool(pd.to_numeric(present, errors="coerce").notna().all())


def csv_chunks(
    path: Path, fmt: str, base_cell: dict[str, Any], judge_model: str, summary: ImportSummary
) -> Iterator[Rows]:
    source = str(path)
    header = csv_header(path)
    text_column = TEXT_COLUMNS[fmt]
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
    first_line_number = 2  # physical line of the chunk's first record (line 1 is the header)
    try:
        # pyarrow's streaming reader parses several times faster than pandas' and keeps memory flat;
        # every column is read as text so that a bad score is reported with its row, not a type error.
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in header}, strings_can_be_null=False
            ),
        )
        for chunk in arrow_chunks(reader):
            chunk.columns = [str(c).strip() for c in chunk.columns]
            if metrics is None:
                metrics, ignored = csv_metric_columns(chunk, fmt, [c.strip() for c in header])
                summary.metrics, summary.ignored_columns = metrics, ignored
            line_breaks = check_no_swallowed_rows(source, chunk, len(header), first_row, first_line_number)
            yield csv_rows(source, chunk, fmt, metrics, base_cell, judge_model, first_row)
            first_row += len(chunk)
            first_line_number += len(chunk) + line_breaks
    except pa.ArrowInvalid as error:
        if "UTF8" in str(error) or "UTF-8" in str(error):
            check_utf8(path)
        message = first_line(error)
        line = _line_quoted_by(path, message)
        raise InputError(
            source,
            f"not a readable CSV: {message[:200]}"
            + ('; check for an unbalanced quote (")' if line is not None and '"' in message else ""),
            row=line,
            unit="line",
        ) from None


def check_no_swallowed_rows(
    source: str, chunk: pd.DataFrame, width: int, first_row: int, first_line_number: int
) -> int:
    """Refuse a quoted field that runs over line ends into what reads as further records.

    An unbalanced quote (``"Hi there,90,90``) makes the CSV parser take every following line up to
    the next quote as one value, merging many rows into one silently. Real answers contain line
    breaks too, so a value is refused only when one of its inner lines is itself a whole record:
    exactly as many fields as the header, starting with a question id of this chunk.

    Returns:
        The number of line breaks inside the chunk's values (to keep line numbers right).
    """
    question_ids = set(chunk["question_id"].str.strip()) if "question_id" in chunk else set()
    id_position = list(chunk.columns).index("question_id") if "question_id" in chunk else 0
    breaks_per_row = np.zeros(len(chunk), dtype=np.int64)
    multiline_columns = []
    for column in chunk.columns:
        multiline = chunk[column].str.contains("\n", regex=False).to_numpy()
        if multiline.any():
            breaks_per_row += chunk[column].str.count("\n").to_numpy()
            multiline_columns.append((column, multiline))
    if not multiline_columns or not question_ids:
        return int(breaks_per_row.sum())
    # Most inner lines of real answers name no question id: skip them before parsing them as CSV.
    names_an_id = re.compile(
        r'(?:^|,)\s*"?(?:'
        + "|".join(re.escape(q) for q in sorted(question_ids, key=len, reverse=True))
        + r')"?\s*(?:,|$)'
    )
    for column, multiline in multiline_columns:
        offsets = np.flatnonzero(multiline)
        for offset, value in zip(offsets, chunk[column].to_numpy()[offsets], strict=True):
            for inner in str(value).split("\n")[1:]:
                if inner.count(",") < width - 1 or not names_an_id.search(inner):
                    continue
                fields = next(csv.reader([inner]), [])
                if len(fields) == width and fields[id_position].strip() in question_ids:
                    line = first_line_number + int(offset) + int(breaks_per_row[:offset].sum())
                    raise InputError(
                        source,
                        f"a quoted value that starts on line {line} runs over line ends into what "
                        f'reads as further rows ({inner[:60]!r}); check for an unbalanced quote (")',
                        row=first_row + int(offset),
                        field=str(column),
                    )
    return int(breaks_per_row.sum())


def _line_quoted_by(path: Path, message: str) -> int | None:
    """The line of the file a pyarrow parse error quotes (``...: got 3: <line>``), if found."""
    _, sep, quoted = message.rpartition(": ")
    if not sep or not quoted.strip():
        return None
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if line.rstrip("\r\n") == quoted or (len(quoted) > 20 and line.startswith(quoted)):
                return number
    return None


def arrow_chunks(reader: pa_csv.CSVStreamingReader) -> Iterator[pd.DataFrame]:
    """Gather the reader's small record batches into DataFrames of about ``_validation.CHUNK_ROWS`` rows."""
    batches: list[pa.RecordBatch] = []
    rows = 0
    for batch in reader:
        batches.append(batch)
        rows += batch.num_rows
        if rows >= _validation.CHUNK_ROWS:
            yield pa.Table.from_batches(batches).to_pandas()
            batches, rows = [], 0
    if batches:
        yield pa.Table.from_batches(batches).to_pandas()


def csv_metric_columns(chunk: pd.DataFrame, fmt: str, header: list[str]) -> tuple[list[str], list[str]]:
    known = {"question", TEXT_COLUMNS[fmt], "question_id", "model", "reasoning_text", "error"}
    metrics = ["aligned", "coherent"]
    ignored = []
    for column in header:
        lowered = column.lower()
        if column in known or column in metrics or column in ROW_CELL_COLUMNS:
            continue
        if lowered.startswith("judge_") and column[len("judge_") :] in header:
            continue  # raw judge probabilities, kept with their metric
        if not is_extra_metric(column) or not is_numeric_column(chunk[column]):
            ignored.append(column)
            continue
        metrics.append(column)
    return metrics, ignored


def csv_rows(
    source: str,
    chunk: pd.DataFrame,
    fmt: str,
    metrics: list[str],
    base_cell: dict[str, Any],
    judge_model: str,
    first_row: int,
) -> Rows:
    n = len(chunk)
    for column in ("question_id", "question"):
        blank = chunk[column].str.strip() == ""
        if blank.any():
            raise InputError(
                source, "empty value", row=first_row + int(np.argmax(blank.to_numpy())), field=column
            )
    row_cell_columns = [c for c in chunk.columns if c in ROW_CELL_COLUMNS or c == "model"]
    if row_cell_columns:
        cells = []
        for offset, values in enumerate(chunk[row_cell_columns].itertuples(index=False, name=None)):
            cell = base_cell
            for column, value in zip(row_cell_columns, values, strict=True):
                if column == "model" and base_cell.get("model"):
                    continue  # --model wins over the file's column
                if str(value).strip():
                    cell = merge_cell(
                        cell, cell_value(source, column, str(value).strip(), first_row + offset)
                    )
            cells.append(cell)
    else:
        cells = [base_cell] * n
    scores = {metric: parse_scores(source, metric, chunk[metric], first_row) for metric in metrics}
    raw = {
        metric: [v or None for v in chunk[f"judge_{metric}"].tolist()]
        for metric in metrics
        if f"judge_{metric}" in chunk.columns
    }
    text = chunk[TEXT_COLUMNS[fmt]].tolist()
    error_values = chunk["error"].tolist() if "error" in chunk.columns else [None] * n
    return Rows(
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
