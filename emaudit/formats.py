"""Names of the file formats emaudit reads and writes (kept apart so the CLI loads without pandas).

Also the one way a cell is written for people: ``key=value`` pairs joined by ``|``, ``-`` for a
missing value, as in study strata and the calibrate document.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MISSING_VALUE = "-"

IMPORT_FORMATS = ("auto", "betley", "organisms", "jsonl")
EXPORT_FORMATS = ("csv", "jsonl", "parquet")
DEFAULT_IMPORT_JUDGE = "gpt-4o"


def cell_name(cell: Mapping[str, Any]) -> str:
    """A cell as people read it everywhere: ``model=m|domain=-|n_shots=16`` (``all`` when empty)."""
    parts = [f"{key}={MISSING_VALUE if value is None else value}" for key, value in cell.items()]
    return "|".join(parts) if parts else "all"
