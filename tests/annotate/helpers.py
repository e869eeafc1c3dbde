"""Small helpers shared by the annotate tests."""

from __future__ import annotations

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from emaudit.annotate import add_rater, create_study
from emaudit.models import Rating
from emaudit.store import write_session
from tests.annotate.factory import add_responses


def make_study(
    engine: Engine,
    items: int = 10,
    *,
    overlap: int = 2,
    lease_seconds: int = 900,
    name: str = "s",
    quota: int | None = None,
) -> int:
    """A study of ``items`` judge-misaligned responses (one stratum); returns its id."""
    add_responses(engine, {"misaligned": items})
    with write_session(engine) as session:
        study = create_study(
            session, name, per_stratum=items, overlap=overlap, lease_seconds=lease_seconds, rater_quota=quota
        )
        assert study.id is not None
        return study.id


def make_raters(engine: Engine, count: int, *, quota: int | None = None) -> list[int]:
    ids = []
    with write_session(engine) as session:
        for i in range(count):
            rater = add_rater(session, f"rater {i}", quota=quota).rater
            assert rater.id is not None
            ids.append(rater.id)
    return ids


def count_ratings(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(Rating)).scalar_one())
