"""Errors that the CLI turns into one-line messages with exit status 2."""

from __future__ import annotations


class EmauditError(Exception):
    """A problem the user can fix; ``str(error)`` is the whole one-line message."""


class InputError(EmauditError):
    """Bad input data, located by file and row/line/field.

    Args:
        source: The file (or other source) the bad value came from.
        problem: What is wrong and, where possible, what to change.
        row: 1-based data row (CSV records after the header) or line (JSONL, YAML).
        field: Column or field name.
        unit: Word used for ``row`` in the message ("row" or "line").
    """

    def __init__(
        self,
        source: str,
        problem: str,
        *,
        row: int | None = None,
        field: str | None = None,
        unit: str = "row",
    ) -> None:
        self.source, self.problem, self.row, self.field = source, problem, row, field
        where = source
        if row is not None:
            where += f": {unit} {row}"
        if field is not None:
            where += f": field '{field}'"
        # Values quoted from the input may hold line breaks; the message must stay on one line.
        super().__init__(f"{where}: {problem}".replace("\r", "\\r").replace("\n", "\\n"))
