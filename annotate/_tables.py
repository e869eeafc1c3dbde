"""Core ``Table`` handles of the store's SQLModel classes, for typed SQL expressions.

SQLModel types ``StudyItem.n_completed`` as ``int``, so ``StudyItem.n_completed < 3`` is a ``bool``
to mypy; ``ITEM.c.n_completed < 3`` is the same SQL, typed as a column expression.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from emaudit.models import (
    Adjudication,
    Assignment,
    Condition,
    JudgeScore,
    Question,
    Rater,
    Rating,
    Response,
    Study,
    StudyItem,
)

ADJUDICATION = cast(Table, Adjudication.__table__)  # type: ignore[attr-defined]
ASSIGNMENT = cast(Table, Assignment.__table__)  # type: ignore[attr-defined]
CONDITION = cast(Table, Condition.__table__)  # type: ignore[attr-defined]
JUDGE_SCORE = cast(Table, JudgeScore.__table__)  # type: ignore[attr-defined]
QUESTION = cast(Table, Question.__table__)  # type: ignore[attr-defined]
RATER = cast(Table, Rater.__table__)  # type: ignore[attr-defined]
RATING = cast(Table, Rating.__table__)  # type: ignore[attr-defined]
RESPONSE = cast(Table, Response.__table__)  # type: ignore[attr-defined]
STUDY = cast(Table, Study.__table__)  # type: ignore[attr-defined]
ITEM = cast(Table, StudyItem.__table__)  # type: ignore[attr-defined]
