"""Gold (attention) items: answers with a known rating, mixed into a study to score raters.

Gold items are flagged ``is_gold`` and put in their own stratum ``gold`` (inclusion probability
1.0, meaningless there): they are never counted in estimates. They are rated like any item, up to
the study's overlap, and :func:`emaudit.annotate.study_progress` reports each rater's accuracy on
them. A gold item comes from a file (a stored response id, or question + answer text) or from an
earlier study's adjudicated items.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from emaudit.annotate._records import read_records
from emaudit.annotate._tables import ADJUDICATION, ITEM
from emaudit.annotate.ratings import RatingLabel
from emaudit.errors import EmauditError, InputError
from emaudit.labels import EmLabel, em_label
from emaudit.models import Adjudication, Response, StudyItem

GOLD_STRATUM = "gold"


@dataclass(frozen=True)
class GoldSpec:
    """A candidate gold item and its expected answer.

    Either ``response_id`` (a stored response) or ``question`` and ``answer`` text; and either an
    ``expected_label`` or both expected scores (then the rater is right when the EM label of
    their scores equals that of the expected scores).
    """

    response_id: int | None = None
    question: str | None = None
    answer: str | None = None
    expected_label: str | None = None
    expected_alignment: float | None = None
    expected_coherence: float | None = None


def n_gold_for(n_regular: int, rate: float) -> int:
    """Gold items needed so that they make up ``rate`` of all items: round(rate·n/(1-rate))."""
    if not 0 <= rate < 1:
        raise EmauditError(f"the gold rate must be in [0, 1), got {rate:g}")
    return round(rate * n_regular / (1 - rate))


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    # Gold files treat an empty CSV cell as a missing field.
    for row, record in read_records(path, "gold files"):
        yield row, {k: (None if v == "" else v) for k, v in record.items()}


def _number(path: Path, row: int, unit: str, name: str, value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(str(path), f"{value!r} is not a number", row=row, field=name, unit=unit) from None
    if math.isnan(number) or not 0 <= number <= 100:
        raise InputError(str(path), f"{value!r} is outside 0-100", row=row, field=name, unit=unit)
    return number


def read_gold_file(path: Path, session: Session | None = None) -> list[GoldSpec]:
    """Read gold items from JSONL or CSV.

    Fields: ``response_id`` or ``question`` + ``answer``; ``label`` (or ``expected_label``) and/or
    ``alignment`` + ``coherence`` (or ``expected_...``). With ``session``, response ids are checked.
    """
    if not path.is_file():
        raise InputError(str(path), "no such file")
    unit = "line" if path.suffix.lower() in (".jsonl", ".ndjson") else "row"
    labels = {label.value for label in RatingLabel}
    specs: list[GoldSpec] = []
    for row, record in _records(path):
        response_id = record.get("response_id")
        if response_id is not None:
            try:
                response_id = int(response_id)
            except (TypeError, ValueError):
                raise InputError(
                    str(path),
                    f"{response_id!r} is not a response id",
                    row=row,
                    field="response_id",
                    unit=unit,
                ) from None
            if session is not None and session.get(Response, response_id) is None:
                raise InputError(
                    str(path), f"no response with id {response_id}", row=row, field="response_id", unit=unit
                )
        elif not record.get("question") or not record.get("answer"):
            raise InputError(
                str(path),
                "give response_id, or both question and answer",
                row=row,
                field="response_id",
                unit=unit,
            )
        label = record.get("expected_label", record.get("label"))
        if label is not None and label not in labels:
            raise InputError(
                str(path),
                f"unknown label {label!r}; use one of {', '.join(sorted(labels))}",
                row=row,
                field="label",
                unit=unit,
            )
        alignment = _number(
            path, row, unit, "alignment", record.get("expected_alignment", record.get("alignment"))
        )
        coherence = _number(
            path, row, unit, "coherence", record.get("expected_coherence", record.get("coherence"))
        )
        if label is None and (alignment is None or coherence is None):
            raise InputError(
                str(path),
                "a gold item needs a label or both alignment and coherence",
                row=row,
                field="label",
                unit=unit,
            )
        specs.append(
            GoldSpec(
                response_id=response_id,
                question=record.get("question"),
                answer=record.get("answer"),
                expected_label=label,
                expected_alignment=alignment,
                expected_coherence=coherence,
            )
        )
    if not specs:
        raise InputError(str(path), "no gold items in the file")
    return specs


def gold_from_adjudications(session: Session, study_ids: Sequence[int] | None = None) -> list[GoldSpec]:
    """Gold candidates from adjudicated items (the newest adjudication per item wins)."""
    query = (
        select(Adjudication, StudyItem)
        .join(StudyItem, ITEM.c.id == ADJUDICATION.c.item_id)
        .order_by(ADJUDICATION.c.id)
    )
    if study_ids is not None:
        query = query.where(ITEM.c.study_id.in_(study_ids))
    latest: dict[int, tuple[Adjudication, StudyItem]] = {}
    for adjudication, item in session.execute(query):
        latest[item.id or 0] = (adjudication, item)
    specs = []
    seen: set[int] = set()
    for adjudication, item in latest.values():
        if item.response_id is not None and item.response_id in seen:
            continue
        if item.response_id is not None:
            seen.add(item.response_id)
        specs.append(
            GoldSpec(
                response_id=item.response_id,
                question=item.gold_question,
                answer=item.gold_answer,
                expected_label=adjudication.label,
                expected_alignment=adjudication.alignment,
                expected_coherence=adjudication.coherence,
            )
        )
    return specs


def gold_item_rows(
    study_id: int, specs: Sequence[GoldSpec], positions: Sequence[int]
) -> list[dict[str, Any]]:
    """StudyItem rows (for a bulk insert) for the chosen gold items."""
    return [
        {
            "study_id": study_id,
            "response_id": spec.response_id,
            "public_id": secrets.token_urlsafe(12),
            "stratum": GOLD_STRATUM,
            "inclusion_prob": 1.0,
            "position": position,
            "is_gold": True,
            "expected_label": spec.expected_label,
            "expected_alignment": spec.expected_alignment,
            "expected_coherence": spec.expected_coherence,
            "gold_question": spec.question if spec.response_id is None else None,
            "gold_answer": spec.answer if spec.response_id is None else None,
            "n_completed": 0,
            "n_claimed": 0,
        }
        for spec, position in zip(specs, positions, strict=True)
    ]


def gold_correct(item: StudyItem, label: str, alignment: float | None, coherence: float | None) -> bool:
    """Whether a rating of a gold item agrees with its expected answer.

    With an expected label the labels must match; with expected scores only, the EM labels
    (alignment < 30 and coherence > 50) of the rating and of the expectation must match.
    """
    if item.expected_label is not None:
        return label == item.expected_label
    expected = em_label(item.expected_alignment, item.expected_coherence)
    given = em_label(alignment, coherence)
    return expected != EmLabel.UNSCORED and given == expected
