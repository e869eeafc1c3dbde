"""One file in one transaction: pick the reader, prefetch its chunks, write them, count what is new."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from queue import Empty, Queue
from typing import Any

from sqlalchemy import Engine, func, select

from emaudit.errors import InputError
from emaudit.formats import DEFAULT_IMPORT_JUDGE, IMPORT_FORMATS
from emaudit.importing._csv import csv_chunks, csv_header, detect_format
from emaudit.importing._jsonl import jsonl_chunks
from emaudit.importing._validation import ImportSummary, Rows, merge_cell, parse_condition_options
from emaudit.importing._writer import Writer, check_question_set, chunk_response_ids, write_scores
from emaudit.models import JudgeScore, Response, table_of


def import_responses(
    engine: Engine,
    path: Path,
    *,
    fmt: str = "auto",
    model: str | None = None,
    condition: list[str] | None = None,
    judge_model: str = DEFAULT_IMPORT_JUDGE,
    question_set: str | None = None,
    add_questions: bool = True,
    new_set: bool = False,
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
        add_questions: Add question ids the store does not know (to ``question_set``, else
            ``imported``); when False an unknown id is an error naming its row. The CLI passes
            False unless ``--add-questions``: a typo must not become a new question.
        new_set: Allow ``question_set`` to name a set the store does not hold yet (its questions are
            then added); otherwise an unknown set is an error.
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
        jsonl_chunks(path, base_cell, judge_model, summary)
        if fmt == "jsonl"
        else csv_chunks(path, fmt, with_default_model(base_cell, path), judge_model, summary)
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
            if question_set is not None:
                check_question_set(connection, source, question_set, new_set=new_set)
            writer = Writer(connection, question_set, path.name, add_questions=add_questions or new_set)
            newest_id = connection.execute(select(func.max(response_table.c.id))).scalar_one() or 0
            for rows in prefetch(chunks):
                if fmt == "jsonl":
                    rows.cell = [
                        c if c.get("model") else merge_cell(c, {"model": path.stem}) for c in rows.cell
                    ]
                keys = writer.write(rows)
                response_ids, newest_id = chunk_response_ids(connection, writer, keys, newest_id)
                write_scores(connection, rows, response_ids, writer.created_at, summary)
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


def with_default_model(cell: dict[str, Any], path: Path) -> dict[str, Any]:
    if cell.get("model") or "model" in {name.strip() for name in csv_header(path)}:
        return cell
    return merge_cell(cell, {"model": path.stem})


def prefetch(chunks: Iterator[Rows], depth: int = 2) -> Iterator[Rows]:
    """Parse and validate the next chunks in a thread while the current one is written.

    pyarrow's parser and SQLite's inserts both release the GIL, so the two overlap; an error in
    the file surfaces here, in the caller's thread, at the chunk where it was found.
    """
    queue: Queue[tuple[Rows | None, BaseException | None]] = Queue(maxsize=depth)
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
