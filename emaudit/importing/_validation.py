"""What every reader shares: the chunk shape, the import summary, cell values and encoding checks."""

from __future__ import annotations

import codecs
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emaudit.errors import InputError
from emaudit.models import CELL_FIELDS

IMPORTED_QUESTION_SET = "imported"


IMPORTED_PROMPT_HASH = "imported"

# Columns / fields that number rows rather than score them: never read as a judge metric.
ID_COLUMNS = frozenset({"response_id", "id", "index", "sample_index", "row", "unnamed: 0", "question_row"})


def is_extra_metric(name: str) -> bool:
    """Whether an unknown numeric column or field may be a judge metric (CSV and JSONL alike)."""
    lowered = name.lower()
    return lowered not in ID_COLUMNS and not lowered.endswith("_binary")


NULL_TOKENS = frozenset({"", "none", "null", "nan", "na", "n/a"})


CHUNK_ROWS = 20_000


INT_CELL_FIELDS = frozenset({"n_shots", "seed"})


ROW_CELL_COLUMNS = frozenset(CELL_FIELDS) - {"model"} | {"group"}


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
class Rows:
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


def first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def check_utf8(path: Path) -> None:
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
        fields.update(cell_value("--condition", key, value.strip(), None))
    return fields


def cell_value(source: str, key: str, value: str, row: int | None) -> dict[str, Any]:
    if key == "model":
        return {"model": value}
    if key in INT_CELL_FIELDS:
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


def merge_cell(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = {k: v for k, v in base.items() if k != "extra"} | {
        k: v for k, v in update.items() if k != "extra"
    }
    merged["extra"] = dict(base.get("extra") or {}) | dict(update.get("extra") or {})
    return merged
