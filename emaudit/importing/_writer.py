"""The one writer: validated chunks into the store, inside the import's transaction."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
from sqlalchemy import Connection, Table, select, tuple_

from emaudit.errors import InputError
from emaudit.importing._validation import IMPORTED_PROMPT_HASH, IMPORTED_QUESTION_SET, ImportSummary, Rows
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


def insert_ignore(
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


def check_question_set(connection: Connection, source: str, name: str, *, new_set: bool) -> None:
    """Refuse a ``--set`` the store does not hold, unless the user asked for a new set."""
    table = table_of(Question)
    sets = sorted(connection.execute(select(table.c.question_set).distinct()).scalars())
    if name not in sets and not new_set:
        known = ", ".join(sets) or "none"
        raise InputError(
            source,
            f"question set '{name}' does not exist (sets in the store: {known}); check --set, "
            "or pass --new-set to create it",
        )


class Writer:
    """Writes validated rows into the store inside one connection's transaction."""

    def __init__(
        self,
        connection: Connection,
        question_set: str | None,
        source_name: str,
        *,
        add_questions: bool = True,
    ) -> None:
        self.connection = connection
        self.question_set = question_set
        self.source_name = source_name
        self.add_questions = add_questions
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

    def question_id(self, key: str, text: str, row: int | None = None) -> int:
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
        elif not self.add_questions:
            where = f" in set '{self.question_set}'" if self.question_set else ""
            raise InputError(
                self.source_name,
                f"unknown question '{key}'{where}: import its question YAML first "
                "('emaudit questions import'), or pass --add-questions to add it",
                row=row,
                field="question_id",
            )
        else:
            result = self.connection.execute(
                table.insert().values(
                    question_set=self.question_set or IMPORTED_QUESTION_SET,
                    key=key,
                    text=text,
                    source=self.source_name,
                )
            )
            self.questions[key] = inserted_id(result)
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
            found = inserted_id(
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

    def write(self, rows: Rows) -> list[tuple[int, int, int]]:
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
            self.question_id(k, t, rows.first_row + i)
            for i, (k, t) in enumerate(zip(rows.question_key, rows.question_text, strict=True))
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
        insert_ignore(
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


def inserted_id(result: Any) -> int:
    primary_key = result.inserted_primary_key
    assert primary_key is not None
    return int(primary_key[0])


def chunk_response_ids(
    connection: Connection, writer: Writer, keys: list[tuple[int, int, int]], newest_id: int
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


def write_scores(
    connection: Connection, rows: Rows, response_ids: list[int], created_at: Any, summary: ImportSummary
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
    insert_ignore(
        connection,
        table_of(JudgeScore),
        ("response_id", "judge_model", "metric", "score", "raw", "prompt_hash", "created_at"),
        records,
    )
