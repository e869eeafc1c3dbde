"""Soak: 40 concurrent raters, overlap 3, 600 items, 10% abandon claims (issue 4 acceptance).

SQLite: 40 threads on one engine. PostgreSQL: 40 spawned processes, one rater each (its own
interpreter, engine and connection), plus two app processes with several raters sharing one study.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from emaudit.annotate import ItemFull, RatingInput, claim_next, study_progress, submit_rating
from emaudit.models import Assignment, Rating, StudyItem
from emaudit.store import make_engine, write_session
from tests.annotate.helpers import make_raters, make_study
from tests.annotate.soak_worker import RaterLog, process_main, rate_in_threads
from tests.conftest import requires_postgres

RATERS, OVERLAP, ITEMS, LEASE = 40, 3, 600, 1


def _check(engine: Engine, study_id: int, logs: list[RaterLog], items: int, overlap: int) -> None:
    acknowledged = sum(len(log.acknowledged) for log in logs)
    with Session(engine) as session:
        rows = session.execute(select(Rating.item_id, Rating.rater_id)).all()
        assert acknowledged == len(rows), "every acknowledged submit is stored, and nothing else"
        per_pair = Counter(rows)
        assert max(per_pair.values()) == 1, "no rater rated an item twice"
        per_item = Counter(item_id for item_id, _ in rows)
        assert len(per_item) == items and set(per_item.values()) == {overlap}, "every item has exactly K"
        counters = session.execute(select(StudyItem.n_completed, StudyItem.n_claimed)).all()
        assert {tuple(c) for c in counters} == {(overlap, 0)}
        expired = session.execute(
            select(func.count()).select_from(Assignment).where(Assignment.status == "expired")
        ).scalar_one()
        abandoned = sum(len(log.abandoned) for log in logs)
        assert abandoned >= 1 and expired >= abandoned, "abandoned leases were reclaimed"
        progress = study_progress(session, study_id)
        assert progress.done and progress.ratings == items * overlap and progress.active_claims == 0
    assert sum(log.resubmits for log in logs) >= 1, "identical resubmits were exercised"
    public_ids = [i for log in logs for i in log.acknowledged]
    for log in logs:
        assert len(log.acknowledged) == len(set(log.acknowledged))
    assert len(public_ids) == items * overlap


def _raters(ids: list[int]) -> list[tuple[int, bool]]:
    return [(rater_id, i % 10 == 0) for i, rater_id in enumerate(ids)]  # 10% abandon


def test_soak_sqlite_threads(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url, pool_size=RATERS, max_overflow=0)
    from emaudit.store import migrate

    migrate(engine)
    study_id = make_study(engine, ITEMS, overlap=OVERLAP, lease_seconds=LEASE)
    raters = _raters(make_raters(engine, RATERS))
    logs = rate_in_threads(engine, study_id, raters, time.monotonic() + 90)
    _check(engine, study_id, logs, ITEMS, OVERLAP)
    engine.dispose()


def _in_processes(
    url: str, study_id: int, groups: list[list[tuple[int, bool]]], seconds: float
) -> list[RaterLog]:
    context = multiprocessing.get_context("spawn")
    with context.Pool(len(groups)) as pool:
        results = pool.starmap(process_main, [(url, study_id, group, seconds) for group in groups])
    return [log for logs in results for log in logs]


@requires_postgres
def test_soak_postgresql_processes(postgres_url: str) -> None:
    from emaudit.store import migrate

    engine = make_engine(postgres_url)
    migrate(engine)
    study_id = make_study(engine, ITEMS, overlap=OVERLAP, lease_seconds=LEASE)
    raters = _raters(make_raters(engine, RATERS))
    logs = _in_processes(postgres_url, study_id, [[rater] for rater in raters], 120)
    _check(engine, study_id, logs, ITEMS, OVERLAP)
    engine.dispose()


@requires_postgres
def test_two_replicas_share_one_postgresql_study(postgres_url: str) -> None:
    """Two app processes on one database (a crowd study behind two replicas) split one study."""
    from emaudit.store import migrate

    engine = make_engine(postgres_url)
    migrate(engine)
    study_id = make_study(engine, 80, overlap=2, lease_seconds=5)
    raters = [(r, False) for r in make_raters(engine, 6)]
    logs = _in_processes(postgres_url, study_id, [raters[:3], raters[3:]], 60)
    _check_no_abandon(engine, logs, 80, 2)
    by_replica = [
        sum(len(log.acknowledged) for log in logs if (log.rater_id, False) in group)
        for group in (raters[:3], raters[3:])
    ]
    assert all(n > 0 for n in by_replica), "both replicas handed out work"
    engine.dispose()


def _check_no_abandon(engine: Engine, logs: list[RaterLog], items: int, overlap: int) -> None:
    with Session(engine) as session:
        rows = session.execute(select(Rating.item_id, Rating.rater_id)).all()
    assert sum(len(log.acknowledged) for log in logs) == len(rows) == items * overlap
    assert max(Counter(rows).values()) == 1
    assert set(Counter(item_id for item_id, _ in rows).values()) == {overlap}


def _claim_and_rate(engine: Engine, study_id: int, rater_id: int, stop: threading.Event) -> int:
    """One device of the rater: claim, rate, repeat; returns the items it rated."""
    rated = 0
    while not stop.is_set():
        with write_session(engine) as session:
            item = claim_next(session, study_id, rater_id)
        if item is None:
            return rated
        try:
            with write_session(engine) as session:
                submit_rating(session, item, rater_id, RatingInput(label="refusal"))
            rated += 1
        except ItemFull:
            pass
    return rated


_UNCLAIMED = RatingInput(label="misaligned", alignment=10, coherence=90)


def _submit_without_claim(engine: Engine, rater_id: int, public_ids: list[str], stop: threading.Event) -> int:
    """The rater's other device (or ``ratings import``): submits items it never claimed."""
    rated = 0
    for public_id in public_ids:
        if stop.is_set():
            break
        try:
            with write_session(engine) as session:
                submit_rating(session, public_id, rater_id, _UNCLAIMED)
            rated += 1
        except ItemFull:
            pass
    return rated


@requires_postgres
def test_submit_without_claim_races_claim_next_on_postgresql(postgres_url: str) -> None:
    """One rater on three devices: two claim and rate, two submit unclaimed items meanwhile.

    Before submits took the rater's row lock, a claim running while an unclaimed submit of the same
    rater committed chose that item and raised IntegrityError (unique assignment per item, rater).
    """
    from emaudit.store import migrate

    engine = make_engine(postgres_url, pool_size=8, max_overflow=0)
    migrate(engine)
    # Overlap 3: an item another rater's rating does not fill stays open for this rater, so only
    # the unique (item, rater) constraint (not the counters) stops a second assignment.
    items = 300
    study_id = make_study(engine, items, overlap=3)
    [rater] = make_raters(engine, 1)
    with Session(engine) as session:
        public_ids = list(session.execute(select(StudyItem.public_id).order_by(StudyItem.position)).scalars())
    stop = threading.Event()
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(_claim_and_rate, engine, study_id, rater, stop) for _ in range(3)]
        futures += [
            pool.submit(_submit_without_claim, engine, rater, ids, stop)
            for ids in (public_ids, public_ids[::-1], public_ids[len(public_ids) // 2 :])
        ]
        try:
            rated = [future.result(timeout=120) for future in futures]
        finally:
            stop.set()
    assert sum(rated[3:]) >= 1, "unclaimed submits took part in the race"
    with Session(engine) as session:
        rows = session.execute(select(Rating.item_id, Rating.supersedes_id)).all()
        counters = set(session.execute(select(StudyItem.n_completed, StudyItem.n_claimed)).all())
    current = [item_id for item_id, supersedes in rows if supersedes is None]
    assert sorted(set(current)) == sorted(current) and len(current) == items, "each item rated once"
    assert counters == {(1, 0)}, "one rater, so each item holds exactly this rater's rating"
    engine.dispose()
