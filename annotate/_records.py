"""Read the records of a small JSONL or CSV file that people write by hand (gold items, ratings)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from emaudit.errors import InputError


def read_records(path: Path, what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line or row number, record)``; CSV values stay strings (empty cells are ``""``).

    Args:
        path: A ``.jsonl``/``.ndjson`` or ``.csv`` file.
        what: What the file holds, for the error on any other extension ("ratings files").

    Raises:
        InputError: naming the file and line of invalid JSON, a line that is not an object, a
            CSV without a header, text that is not UTF-8, or an unsupported extension.
    """
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise InputError(
                        str(path), f"not valid JSON ({error.msg})", row=line_no, unit="line"
                    ) from None
                if not isinstance(record, dict):
                    raise InputError(str(path), "each line must be a JSON object", row=line_no, unit="line")
                yield line_no, record
    elif suffix == ".csv":
        try:
            with path.open(encoding="utf-8", newline="") as handle:
                reader = csv.DictReader(handle)
                if not reader.fieldnames:
                    raise InputError(str(path), "empty file: expected a header row")
                for row_no, record in enumerate(reader, 1):
                    yield row_no, {k: v for k, v in record.items() if k}
        except UnicodeDecodeError:
            raise InputError(str(path), "not UTF-8 text") from None
    else:
        raise InputError(str(path), f"{what} are .csv or .jsonl")
