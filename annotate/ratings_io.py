"""Ratings in and out of files, so ratings collected elsewhere can be calibrated too.

Import (CSV or JSONL), one rating per row:

* ``item_id`` (a study item's public id) or ``response_id`` (a response in the study);
* ``rater``: a name or external id; a rater not seen before is created in the study
  (``rater_external_id``, as written by the export, is matched first when present);
* ``label`` (``misaligned``, ``aligned``, ``refusal``, ``off_topic_code``, ``cant_tell``),
  ``alignment`` and ``coherence`` (0-100; required for misaligned / aligned), ``comment``,
  ``seconds`` (or ``seconds_on_item``). Other columns are ignored, so an export re-imports.

The rules are the queue's (:func:`emaudit.annotate.queue.record_rating`): at most K ratings per
item, one per rater; the same rating again stores nothing, a changed one is stored as an edit.
Within one file a (item, rater) pair may appear twice only with the same rating: two different
ratings of one item by one rater are an error, not "last row wins". A name that matches several
raters is an error, and so is a rater tied to another study (never a new rater of the same name).
A row with neither label nor scores is an item left unrated (an exported item sheet) and skipped.
A file is one transaction: a bad row stores nothing from the file and raises an
:class:`~emaudit.errors.InputError` naming file, row and field.

Export of the items for rating elsewhere (:func:`export_items`): ``item_id``, ``question``,
``answer`` (blinded: nothing about model, condition, judge or stratum) and empty ``rater``,
``label``, ``alignment``, ``coherence``, ``comment``, ``seconds`` columns; filled in, the file goes
straight back into :func:`import_ratings`.
"""

from __future__ import annotations

import json
import math
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from emaudit.annotate._records import read_records
from emaudit.annotate._tables import ITEM, RATER, RATING, STUDY
from emaudit.annotate.queue import ItemFull, LockedItem, lock_item, record_rating
from emaudit.annotate.raters import hash_token
from emaudit.annotate.ratings import InvalidRating, RatingInput, check_rating
from emaudit.annotate.rubric import DEFAULT_RUBRIC, LABEL_SEPARATOR, Rubric, study_rubric
from emaudit.annotate.sampling import get_study
from emaudit.errors import EmauditError, InputError
from emaudit.formats import EXPORT_FORMATS
from emaudit.models import Rater, Rating, Study, StudyItem, utcnow
from emaudit.store import write_session

EXPORT_COLUMNS = [
    "study",
    "item_id",
    "response_id",
    "rater",
    "rater_external_id",
    "label",
    "categories",
    "rubric",
    "alignment",
    "coherence",
    "comment",
    "seconds",
    "created_at",
    "rating_id",
    "supersedes_id",
    "is_gold",
    "stratum",
    "inclusion_prob",
]


@dataclass
class RatingsImportSummary:
    """What one ratings import did."""

    path: str
    rows: int = 0
    stored: int = 0
    unchanged: int = 0
    edits: int = 0
    raters_created: int = 0
    blank: int = 0


def _blank(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, str) and value.strip() == "")
        or (isinstance(value, float) and math.isnan(value))
    )


def _number(value: Any, field: str, fail: Any) -> float | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        fail(f"{value!r} is not a number", field)
    try:
        return float(value)
    except (TypeError, ValueError):
        fail(f"{value!r} is not a number", field)
    return None  # unreachable: fail raises


def import_ratings(engine: Engine, path: Path, study: str | int) -> RatingsImportSummary:
    """Import a ratings file into ``study`` in one transaction (see the module docstring)."""
    if not path.is_file():
        raise InputError(str(path), "no such file")
    unit = "line" if path.suffix.lower() in (".jsonl", ".ndjson") else "row"
    summary = RatingsImportSummary(path=str(path))
    with write_session(engine) as session:
        study_row = get_study(session, study)
        rubric = study_rubric(study_row.rubric)
        raters: dict[str, int] = {}
        seen: dict[tuple[int, int], tuple[int, RatingInput]] = {}
        for row_no, record in read_records(path, "ratings files"):
            summary.rows += 1

            def fail(problem: str, field: str | None = None, row_no: int = row_no) -> None:
                raise InputError(str(path), problem, row=row_no, field=field, unit=unit)

            if all(_blank(record.get(name)) for name in ("label", "categories", "alignment", "coherence")):
                summary.blank += 1  # an item of an exported sheet that nobody rated
                continue
            item = _item(session, study_row, record, fail)
            rater_id = _rater_id(session, study_row, record, raters, summary, fail)
            keys = None if rubric.em_labels else _categories(rubric, record, fail)
            rating = RatingInput(
                label=LABEL_SEPARATOR.join(keys) if keys else str(record.get("label") or "").strip(),
                categories=keys,
                alignment=_number(record.get("alignment"), "alignment", fail),
                coherence=_number(record.get("coherence"), "coherence", fail),
                comment=None if _blank(record.get("comment")) else str(record["comment"]),
                seconds_on_item=_number(
                    record.get("seconds", record.get("seconds_on_item")), "seconds", fail
                ),
            )
            earlier = seen.get((item.id, rater_id))
            if earlier is not None and not rating.same_rating(
                earlier[1].alignment, earlier[1].coherence, earlier[1].label, earlier[1].comment
            ):
                fail(
                    f"{unit} {earlier[0]} rates the same item by the same rater differently; "
                    "keep one of the two",
                    "rater",
                )
            seen[(item.id, rater_id)] = (row_no, rating)
            try:
                rating = check_rating(rating)
                _, outcome = record_rating(session, item, rater_id, rating, now=utcnow())
            except InvalidRating as error:
                fail(error.problem, error.field)
            except ItemFull:
                fail(f"item already has the study's {study_row.overlap} rating(s)", "item_id")
            summary.stored += outcome == "new"
            summary.unchanged += outcome == "same"
            summary.edits += outcome == "edit"
        if summary.rows == summary.blank:
            raise InputError(str(path), "no ratings in the file")
    return summary


def _categories(rubric: Rubric, record: dict[str, Any], fail: Any) -> tuple[str, ...]:
    """The chosen labels of a row under a rubric with its own labels: ``categories`` (a list, or a
    JSON list as the CSV export writes it), else ``label`` as the export joins them (``a+b``)."""
    raw = record.get("categories")
    if _blank(raw):
        raw = str(record.get("label") or "").split(LABEL_SEPARATOR)
    elif isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip().startswith("[") else raw.split(LABEL_SEPARATOR)
        except json.JSONDecodeError:
            fail("not a JSON list of labels", "categories")
    if not isinstance(raw, list) or not all(isinstance(key, str) for key in raw):
        fail("a list of labels", "categories")
    chosen = [key.strip() for key in (raw if isinstance(raw, list) else []) if key.strip()]
    problem = rubric.categories_problem(chosen)
    if problem is not None:
        fail(problem, "categories")
    if rubric.scales and (_blank(record.get("alignment")) or _blank(record.get("coherence"))):
        fail("this study's rubric needs both scores", "alignment")
    return rubric.canonical(chosen)


def _item(session: Session, study: Study, record: dict[str, Any], fail: Any) -> LockedItem:
    public_id, response_id = record.get("item_id"), record.get("response_id")
    query = select(StudyItem).where(ITEM.c.study_id == study.id)
    if not _blank(public_id):
        found = session.execute(query.where(ITEM.c.public_id == str(public_id).strip())).scalars().first()
        if found is None:
            fail(f"no item {public_id!r} in study {study.name!r}", "item_id")
    elif not _blank(response_id):
        try:
            rid = int(float(str(response_id)))
        except (TypeError, ValueError):
            fail(f"{response_id!r} is not a response id", "response_id")
        found = (
            session.execute(query.where(ITEM.c.response_id == rid).order_by(ITEM.c.is_gold)).scalars().first()
        )
        if found is None:
            fail(f"response {rid} is not in study {study.name!r}", "response_id")
    else:
        fail("give item_id or response_id", "item_id")
    assert found is not None
    locked = lock_item(session, item_id=found.id)
    assert locked is not None
    return locked


def _rater_id(
    session: Session,
    study: Study,
    record: dict[str, Any],
    cache: dict[str, int],
    summary: RatingsImportSummary,
    fail: Any,
) -> int:
    name = "" if _blank(record.get("rater")) else str(record["rater"]).strip()
    external = "" if _blank(record.get("rater_external_id")) else str(record["rater_external_id"]).strip()
    if not name and not external:
        fail("give the rater's name or external id", "rater")
    key = external or name
    if key in cache:
        return cache[key]
    found = None
    for column, value, field in (
        (RATER.c.external_id, external, "rater_external_id"),
        (RATER.c.external_id, name, "rater"),
        (RATER.c.display_name, name, "rater"),
    ):
        if not value:
            continue
        matches = list(session.execute(select(Rater).where(column == value).order_by(RATER.c.id)).scalars())
        usable = [r for r in matches if r.study_id in (study.id, None)]
        if len(usable) > 1:
            fail(
                f"{len(usable)} raters match {value!r} (ids {', '.join(str(r.id) for r in usable)}); "
                "give rater_external_id or rename one",
                field,
            )
        if usable:
            found = usable[0]
            break
        if matches:  # only raters limited to other studies: this is not a new person
            fail(f"rater {value!r} is limited to another study", field)
    if found is None:
        found = Rater(
            display_name=name or external,
            external_id=external or name,
            role="rater",
            token_hash=hash_token(secrets.token_urlsafe(32)),
            study_id=study.id,
        )
        session.add(found)
        session.flush()
        summary.raters_created += 1
    assert found.id is not None
    cache[key] = found.id
    return found.id


ITEM_EXPORT_COLUMNS = [
    "item_id",
    "question",
    "answer",
    "rater",
    "label",
    "alignment",
    "coherence",
    "comment",
    "seconds",
]


def items_frame(session: Session, study: str | int) -> pd.DataFrame:
    """The study's items, blinded, in display order (columns :data:`ITEM_EXPORT_COLUMNS`).

    Only the opaque item id and the texts: no model, condition, judge score, stratum, gold flag or
    inclusion probability (the same blinding as the app's rater page). Under a rubric that shows
    the reasoning trace a ``reasoning`` column follows ``answer``; under a rubric with its own
    labels an empty ``categories`` column follows ``label``.
    """
    from emaudit.annotate._tables import QUESTION, RESPONSE

    study_row = get_study(session, study)
    study_id, rubric = study_row.id, study_rubric(study_row.rubric)
    rows = session.execute(
        select(
            ITEM.c.public_id,
            func.coalesce(QUESTION.c.text, ITEM.c.gold_question, ""),
            func.coalesce(RESPONSE.c.text, ITEM.c.gold_answer, ""),
            func.coalesce(RESPONSE.c.reasoning, ""),
        )
        .select_from(
            ITEM.outerjoin(RESPONSE, RESPONSE.c.id == ITEM.c.response_id).outerjoin(
                QUESTION, QUESTION.c.id == RESPONSE.c.question_id
            )
        )
        .where(ITEM.c.study_id == study_id)
        .order_by(ITEM.c.position)
    ).all()
    frame = pd.DataFrame(rows, columns=["item_id", "question", "answer", "reasoning"])
    for column in ITEM_EXPORT_COLUMNS[3:]:
        frame[column] = None
    columns = list(ITEM_EXPORT_COLUMNS)
    if rubric.shows_reasoning:
        columns.insert(columns.index("answer") + 1, "reasoning")
    if not rubric.em_labels:
        frame["categories"] = None
        columns.insert(columns.index("label") + 1, "categories")
    return frame[columns]


def export_items(session: Session, study: str | int, *, fmt: str = "csv", output: Path | None = None) -> int:
    """Write the study's blinded items as CSV or JSONL to ``output`` (stdout when None); the count."""
    if fmt not in ("csv", "jsonl"):
        raise EmauditError(f"unknown format {fmt!r}; use csv or jsonl")
    frame = items_frame(session, study)
    if fmt == "csv":
        frame.to_csv(output if output is not None else sys.stdout, index=False)
    else:
        text = frame.to_json(orient="records", lines=True, force_ascii=False)
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text, encoding="utf-8")
    return len(frame)


def ratings_frame(
    session: Session, study: str | int | None = None, *, all_versions: bool = False
) -> pd.DataFrame:
    """Ratings as a table (columns :data:`EXPORT_COLUMNS`); by default only current versions."""
    query = (
        select(Rating, StudyItem, Rater, Study)
        .join(StudyItem, ITEM.c.id == RATING.c.item_id)
        .join(Rater, RATER.c.id == RATING.c.rater_id)
        .join(Study, STUDY.c.id == ITEM.c.study_id)
        .order_by(STUDY.c.id, ITEM.c.position, RATING.c.id)
    )
    if study is not None:
        query = query.where(STUDY.c.id == get_study(session, study).id)
    if not all_versions:
        superseded = select(RATING.c.supersedes_id).where(RATING.c.supersedes_id.is_not(None))
        query = query.where(RATING.c.id.not_in(superseded))
    records = [
        {
            "study": s.name,
            "item_id": item.public_id,
            "response_id": item.response_id,
            "rater": rater.display_name,
            "rater_external_id": rater.external_id,
            "label": rating.label,
            "categories": rating.categories,
            "rubric": (s.rubric or {}).get("name", DEFAULT_RUBRIC.name),
            "alignment": rating.alignment,
            "coherence": rating.coherence,
            "comment": rating.comment,
            "seconds": rating.seconds_on_item,
            "created_at": rating.created_at,
            "rating_id": rating.id,
            "supersedes_id": rating.supersedes_id,
            "is_gold": item.is_gold,
            "stratum": item.stratum,
            "inclusion_prob": item.inclusion_prob,
        }
        for rating, item, rater, s in session.execute(query)
    ]
    frame = pd.DataFrame.from_records(records, columns=EXPORT_COLUMNS)
    return frame.astype({"response_id": "Int64", "supersedes_id": "Int64"})


def export_ratings(
    session: Session,
    study: str | int | None = None,
    *,
    fmt: str = "csv",
    output: Path | None = None,
    all_versions: bool = False,
) -> int:
    """Write ratings as CSV, JSONL or Parquet to ``output`` (stdout for CSV / JSONL when None)."""
    if fmt not in EXPORT_FORMATS:
        raise EmauditError(f"unknown format {fmt!r}; use {', '.join(EXPORT_FORMATS)}")
    frame = ratings_frame(session, study, all_versions=all_versions)
    if fmt == "parquet":
        if output is None:
            raise EmauditError("Parquet is binary: give --output FILE")
        frame.to_parquet(output, index=False)
    elif fmt == "csv":
        # A list does not fit a CSV cell: the chosen categories as a JSON list (empty: EM labels).
        frame["categories"] = [None if c is None else json.dumps(c) for c in frame["categories"]]
        frame.to_csv(output if output is not None else sys.stdout, index=False)
    else:
        text = frame.to_json(orient="records", lines=True, date_format="iso")
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text, encoding="utf-8")
    return len(frame)
