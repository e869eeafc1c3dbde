"""The assignment queue: hand items to many raters at once without losing or duplicating work.

Rules (issue 4):

* a rater never gets an item twice (an ``Assignment`` is unique per item and rater, and an item
  whose lease a rater let expire is not offered to that rater again);
* an item gets at most K completed ratings, K = the study's overlap;
* a claim is a lease (the study's ``lease_seconds``, default 15 minutes); expired leases go back to
  the pool (:func:`release_expired`, which :func:`claim_next` also runs, at most every
  :data:`RELEASE_EVERY` per study and process);
* while a rater holds an unexpired claim, :func:`claim_next` returns that same item (a page reload);
* a submit after the lease expired is still accepted while the item has a free slot (never lose
  human work). A live lease is a promise: if the free slot went to another rater meanwhile, that
  rater's lease wins and the late submit raises :class:`ItemFull`;
* resubmitting the same rating is idempotent; a different rating for an item already rated by the
  same rater is an edit: a new row that supersedes the old one (ratings are append-only).

Items are claimed breadth-first (fewest completed ratings, then display position), so overlap
fills evenly and partial results are usable early.

Transactions: every function expects to run inside the caller's write transaction and does not
commit. On SQLite the caller opens it with :func:`emaudit.store.write_session` (``BEGIN
IMMEDIATE`` takes the write lock up front, so claims are serialised); on PostgreSQL the claim
query is ``SELECT ... FOR UPDATE SKIP LOCKED`` so concurrent raters skip each other's candidate
rows instead of waiting, and the rater's own row is locked (``FOR NO KEY UPDATE``) so one rater's
two tabs cannot claim twice. Locks are always taken item first, then assignment, so the functions
cannot deadlock. ``StudyItem.n_completed`` / ``n_claimed`` are kept in the same transactions,
making the claim one indexed query.

Latency on PostgreSQL is dominated by round trips, not by the server's work (every statement
executes in well under a millisecond on a 20,000-item study), because each round trip waits for a
client thread and a backend to be scheduled. So a claim is three statements (lock the rater and
read the study; read the rater's state; choose, lease and count an item in one data-modifying CTE)
and a new rating two (lock the item with the rater; write rating, assignment and counters in one
CTE), and expired leases are released every few seconds rather than on every claim.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from statistics import median
from threading import Lock
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Integer,
    String,
    and_,
    bindparam,
    exists,
    func,
    insert,
    inspect,
    literal,
    select,
    update,
)
from sqlalchemy.sql.dml import Insert, Update
from sqlmodel import Session

from emaudit.annotate._tables import ASSIGNMENT, ITEM, QUESTION, RATER, RATING, RESPONSE, STUDY
from emaudit.annotate.gold import gold_correct
from emaudit.annotate.ratings import RatingInput, check_rating
from emaudit.annotate.sampling import get_study
from emaudit.errors import EmauditError
from emaudit.models import Rater, Rating, Study, StudyItem, utcnow

CLAIMED, SUBMITTED, EXPIRED, SKIPPED = "claimed", "submitted", "expired", "skipped"


class ItemFull(EmauditError):
    """The item already has its K ratings (or its free slots are leased to others); nothing stored."""


class AlreadyRated(EmauditError):
    """The rater already rated this item differently (e.g. in another tab) and edits were not allowed."""


class UnknownItem(EmauditError):
    """No item with this public id."""


@dataclass(frozen=True)
class Item:
    """What the app receives for a rater: the text to rate and an opaque id, nothing else.

    Blinding happens here, on the server: no model, condition, judge score, stratum, inclusion
    probability, gold flag or other raters' ratings ever leave the store with an item.

    Attributes:
        item_id: The item's opaque public id (``secrets.token_urlsafe``), used to submit.
        question: The question as the model saw it.
        answer: The model's answer, verbatim.
        done: Items this rater has rated in the study (for the progress bar).
        quota: The rater's quota, or None when unlimited.
    """

    item_id: str
    question: str
    answer: str
    done: int
    quota: int | None


# The hot path is Core SQL on the session's connection, with statements built once here: the
# compiled-statement cache then makes a claim or a submit a handful of sub-millisecond round trips.
_P = bindparam
_STUDY = select(STUDY.c.id, STUDY.c.overlap, STUDY.c.lease_seconds).where(STUDY.c.id == _P("study"))
_RATER = select(RATER.c.id, RATER.c.study_id, RATER.c.quota, RATER.c.display_name).where(
    RATER.c.id == _P("rater")
)
# The claim's first round trip: the rater row, locked (FOR NO KEY UPDATE, which serialises one
# rater's concurrent tabs without blocking the foreign-key checks of other transactions), plus the
# study's settings. The rater's state is read by a later statement, whose snapshot is taken after
# the lock is granted: a tab that waited here sees the claim the other tab made.
_CLAIMER = (
    select(
        RATER.c.id,
        RATER.c.study_id,
        RATER.c.quota,
        RATER.c.display_name,
        select(STUDY.c.overlap).where(STUDY.c.id == _P("study")).scalar_subquery().label("overlap"),
        select(STUDY.c.lease_seconds).where(STUDY.c.id == _P("study")).scalar_subquery().label("lease"),
        select(STUDY.c.seed).where(STUDY.c.id == _P("study")).scalar_subquery().label("seed"),
        RATER.c.active,
    )
    .where(RATER.c.id == _P("rater"))
    .with_for_update(key_share=True)
)
_EXPIRED_IDS = (
    select(ASSIGNMENT.c.id)
    .join(ITEM, ITEM.c.id == ASSIGNMENT.c.item_id)
    .where(
        ASSIGNMENT.c.study_id == _P("study"),
        ASSIGNMENT.c.status == CLAIMED,
        ASSIGNMENT.c.lease_expires_at <= _P("now"),
    )
    # Lock the items first (the order every function uses), skipping items another transaction
    # holds: their leases are released next time.
    .with_for_update(skip_locked=True, of=ITEM)
)
_RELEASE = (
    update(ASSIGNMENT)
    .where(ASSIGNMENT.c.id.in_(_EXPIRED_IDS.scalar_subquery()), ASSIGNMENT.c.status == CLAIMED)
    .values(status=EXPIRED)
    .returning(ASSIGNMENT.c.item_id)
)
_MINE = and_(ASSIGNMENT.c.rater_id == _P("rater"), ASSIGNMENT.c.study_id == _P("study"))
_STATE = select(
    select(ASSIGNMENT.c.item_id)
    .where(_MINE, ASSIGNMENT.c.status == CLAIMED, ASSIGNMENT.c.lease_expires_at > _P("now"))
    .order_by(ASSIGNMENT.c.id)
    .limit(1)
    .scalar_subquery(),
    select(func.count())
    .select_from(ASSIGNMENT)
    .where(_MINE, ASSIGNMENT.c.status == SUBMITTED)
    .scalar_subquery(),
)
_TEXT_COLUMNS = (
    ITEM.c.id,
    ITEM.c.public_id,
    func.coalesce(QUESTION.c.text, ITEM.c.gold_question, literal("")),
    func.coalesce(RESPONSE.c.text, ITEM.c.gold_answer, literal("")),
)
_TEXT_JOIN = ITEM.outerjoin(RESPONSE, RESPONSE.c.id == ITEM.c.response_id).outerjoin(
    QUESTION, QUESTION.c.id == RESPONSE.c.question_id
)
_HELD = select(*_TEXT_COLUMNS).select_from(_TEXT_JOIN).where(ITEM.c.id == _P("item"))
_SEEN = exists().where(ASSIGNMENT.c.item_id == ITEM.c.id, ASSIGNMENT.c.rater_id == _P("rater"))
_OPEN = and_(ITEM.c.study_id == _P("study"), ITEM.c.n_completed + ITEM.c.n_claimed < _P("overlap"), ~_SEEN)
_QUEUE_ORDER = (ITEM.c.queue_rank, ITEM.c.n_completed, ITEM.c.position)
ORDER_WINDOW = 32
"""Items at the head of the queue among which each rater's own seeded permutation picks.

Breadth-first filling fixes which items are open; within the first ORDER_WINDOW of them each
rater draws in their own order, so two raters do not see the same sequence (order effects are
not confounded with items) while the index still finds the candidates (ix_studyitem_requeue).
"""
_PRIME = 2_147_483_647  # 2**31 - 1: (id * a + b) mod p is a permutation of ids for 0 < a < p
# The rater's order within the window: a seeded affine permutation of item ids, (id * a + b) mod p.
_RATER_ORDER = (ITEM.c.id * _P("order_a", type_=BigInteger) + _P("order_b", type_=BigInteger)) % _PRIME
_WINDOW = select(ITEM.c.id).where(_OPEN).order_by(*_QUEUE_ORDER).limit(ORDER_WINDOW)


def _candidate(columns: Any, source: Any) -> Any:
    """The next open item for the rater: requeued items first, then breadth-first (fewest completed
    ratings), then the rater's permutation within the head of the queue; rows other transactions
    have locked are skipped."""
    return (
        select(*columns)
        .select_from(source)
        .where(_OPEN, ITEM.c.id.in_(_WINDOW.scalar_subquery()))
        .order_by(ITEM.c.queue_rank, ITEM.c.n_completed, _RATER_ORDER)
        .limit(1)
        .with_for_update(skip_locked=True, of=ITEM)
    )


_CANDIDATE = _candidate(_TEXT_COLUMNS, _TEXT_JOIN)
# When every item of the window is locked by other transactions for a moment (many raters at
# once), fall back to the first unlocked open item in queue order rather than report "none left".
_ANY_CANDIDATE = (
    select(*_TEXT_COLUMNS)
    .select_from(_TEXT_JOIN)
    .where(_OPEN)
    .order_by(*_QUEUE_ORDER)
    .limit(1)
    .with_for_update(skip_locked=True, of=ITEM)
)
_ANY_OPEN = select(ITEM.c.id).where(_OPEN).limit(1)


def _claim_in_one_statement(*, windowed: bool = True) -> Any:
    """PostgreSQL: choose, lease and count an item in one round trip (data-modifying CTEs).

    ``WITH candidate AS (SELECT ... FOR UPDATE SKIP LOCKED), leased AS (INSERT INTO assignment ...),
    counted AS (UPDATE studyitem SET n_claimed = n_claimed + 1 ...) SELECT <text> ...``: the same
    rows and locks as :data:`_CANDIDATE` + :data:`_NEW_ASSIGNMENT` + :data:`_ADD_CLAIMED`, three round
    trips fewer (each one costs a scheduler wake-up of a client thread and a backend on a busy host).
    """
    if windowed:
        candidate = _candidate([ITEM.c.id], ITEM).cte("candidate")
    else:
        candidate = (
            select(ITEM.c.id)
            .where(_OPEN)
            .order_by(*_QUEUE_ORDER)
            .limit(1)
            .with_for_update(skip_locked=True)
            .cte("candidate")
        )
    leased = (
        insert(ASSIGNMENT)
        .from_select(
            ["study_id", "item_id", "rater_id", "status", "claimed_at", "lease_expires_at"],
            select(
                _P("study", type_=Integer),
                candidate.c.id,
                _P("rater", type_=Integer),
                literal(CLAIMED, String),
                _P("now", type_=ASSIGNMENT.c.claimed_at.type),
                _P("expires", type_=ASSIGNMENT.c.lease_expires_at.type),
            ),
        )
        .returning(ASSIGNMENT.c.item_id)
        .cte("leased")
    )
    counted = (
        update(ITEM)
        .where(ITEM.c.id == leased.c.item_id)
        .values(n_claimed=ITEM.c.n_claimed + 1, queue_rank=1)
        .cte("counted")
    )
    return (
        select(*_TEXT_COLUMNS)
        .select_from(_TEXT_JOIN.join(candidate, candidate.c.id == ITEM.c.id))
        .add_cte(counted)
    )


_CLAIM_ONE_STATEMENT = _claim_in_one_statement()
_CLAIM_ANY_ONE_STATEMENT = _claim_in_one_statement(windowed=False)
_ADD_CLAIMED = (
    update(ITEM).where(ITEM.c.id == _P("item")).values(n_claimed=ITEM.c.n_claimed + 1, queue_rank=1)
)
# A lease that expired or was skipped frees its slot and puts the item at the head of the queue.
_REQUEUE = (
    update(ITEM)
    .where(ITEM.c.id == _P("item"))
    .values(n_claimed=ITEM.c.n_claimed - _P("released"), queue_rank=0)
)
_LOCK_RATER = select(RATER.c.id).where(RATER.c.id == _P("rater")).with_for_update(key_share=True)
_LOCK_ITEM = (
    select(
        ITEM.c.id, ITEM.c.study_id, ITEM.c.public_id, ITEM.c.n_completed, ITEM.c.n_claimed, STUDY.c.overlap
    )
    .join(STUDY, STUDY.c.id == ITEM.c.study_id)
    .with_for_update(of=ITEM)
)
_LOCK_BY_PUBLIC_ID = _LOCK_ITEM.where(ITEM.c.public_id == _P("public_id"))
_LOCK_BY_ID = _LOCK_ITEM.where(ITEM.c.id == _P("item"))
# A submit's first round trip: the item row locked, and the rater (not locked) in the same query.
_LOCK_FOR_SUBMIT = _LOCK_BY_PUBLIC_ID.add_columns(
    RATER.c.id.label("rater"), RATER.c.study_id.label("rater_study"), RATER.c.display_name
).outerjoin(RATER, RATER.c.id == _P("rater"))
_ASSIGNMENT = select(ASSIGNMENT.c.id, ASSIGNMENT.c.status).where(
    ASSIGNMENT.c.item_id == _P("item"), ASSIGNMENT.c.rater_id == _P("rater")
)
_LATEST = (
    select(
        RATING.c.id,
        RATING.c.alignment,
        RATING.c.coherence,
        RATING.c.label,
        RATING.c.comment,
        RATING.c.seconds_on_item,
        RATING.c.supersedes_id,
        RATING.c.created_at,
    )
    .where(RATING.c.item_id == _P("item"), RATING.c.rater_id == _P("rater"))
    .order_by(RATING.c.id.desc())
    .limit(1)
)
_INSERT_RATING = insert(RATING).returning(RATING.c.id)
_SUBMIT_ASSIGNMENT = (
    update(ASSIGNMENT)
    .where(ASSIGNMENT.c.id == _P("assignment"))
    .values(status=SUBMITTED, submitted_at=_P("now"))
)
_COMPLETE = (
    update(ITEM)
    .where(ITEM.c.id == _P("item"))
    .values(n_completed=ITEM.c.n_completed + 1, n_claimed=ITEM.c.n_claimed - _P("released"))
)
_ASSIGNMENT_COLUMNS = (
    "study_id",
    "item_id",
    "rater_id",
    "status",
    "claimed_at",
    "lease_expires_at",
    "submitted_at",
)
_RATING_COLUMNS = (
    "item_id",
    "rater_id",
    "alignment",
    "coherence",
    "label",
    "categories",
    "comment",
    "seconds_on_item",
    "supersedes_id",
    "created_at",
)


def _store_in_one_statement(mark_submitted: Insert | Update) -> Any:
    """PostgreSQL: a new rating, its assignment marked submitted and the item counted, one round trip.

    The same statements as the SQLite path (:data:`_INSERT_RATING`, ``mark_submitted``,
    :data:`_COMPLETE`) as data-modifying CTEs; the rating's parameters are prefixed ``rating_``.
    Returns the rating id.
    """
    inserted = _INSERT_RATING.values({name: _P(f"rating_{name}") for name in _RATING_COLUMNS}).cte("inserted")
    return select(inserted.c.id).add_cte(mark_submitted.cte("marked"), _COMPLETE.cte("completed"))


# Parameters are prefixed: a DML statement reads parameters named like its table's columns as extra
# SET / VALUES entries, and the one-statement forms below combine writes to several tables.
_NEW_ASSIGNMENT = insert(ASSIGNMENT).values({name: _P(f"new_{name}") for name in _ASSIGNMENT_COLUMNS})


def _new_assignment(**columns: Any) -> dict[str, Any]:
    """Parameters of :data:`_NEW_ASSIGNMENT` (every column of ``_ASSIGNMENT_COLUMNS``)."""
    return {f"new_{name}": value for name, value in columns.items()}


_STORE_WITH_NEW_ASSIGNMENT = _store_in_one_statement(_NEW_ASSIGNMENT)
_STORE_WITH_SUBMITTED_ASSIGNMENT = _store_in_one_statement(_SUBMIT_ASSIGNMENT)
_REMAINING = (
    select(func.count())
    .select_from(ITEM)
    .where(ITEM.c.study_id == _P("study"), ITEM.c.n_completed < _P("overlap"))
)


@dataclass(frozen=True)
class LockedItem:
    """An item row locked for update (``SELECT ... FOR UPDATE``), with its study's overlap."""

    id: int
    study_id: int
    public_id: str
    n_completed: int
    n_claimed: int
    overlap: int


def _pk(row: Study | Rater | int) -> int:
    if isinstance(row, int):
        return row
    identity = inspect(row).identity  # works on detached, expired rows from another session
    if identity is None:
        raise EmauditError(f"{type(row).__name__} has not been stored yet")
    return int(identity[0])


def _utc(now: datetime | None) -> datetime:
    """``now`` in UTC (a naive value is taken as UTC); the current time when None.

    Every stored time is UTC: SQLite keeps the wall-clock text of whatever offset it is given, so a
    ``now`` at +02:00 would otherwise be compared with UTC leases as if it were two hours later.
    """
    if now is None:
        return utcnow()
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def rater_order(study_seed: int, rater_id: int) -> tuple[int, int]:
    """The rater's seeded permutation of item ids, ``(a, b)`` of ``(id * a + b) mod (2**31 - 1)``.

    Derived from the study's seed and the rater's id, so it is reproducible from what is stored
    (the order a rater actually saw is also in their assignments' ``claimed_at``).
    """
    mixed = (study_seed * 1_000_003 + rater_id * 2_654_435_761) % _PRIME
    return 1 + mixed % (_PRIME - 1), (mixed * 40_503 + rater_id) % _PRIME


def _study(session: Session, study: Study | int | str) -> Study:
    return get_study(session, study if isinstance(study, str) else _pk(study))


def _connection(session: Session) -> Connection:
    return session.connection()


def _study_params(conn: Connection, study: Study | int | str, session: Session) -> Any:
    study_id = _pk(get_study(session, study) if isinstance(study, str) else study)
    found = conn.execute(_STUDY, {"study": study_id}).first()
    if found is None:
        raise EmauditError(f"unknown study {study_id}")
    return found


def _rater_params(conn: Connection, rater: Rater | int, study_id: int) -> Any:
    found = conn.execute(_RATER, {"rater": _pk(rater)}).first()
    if found is None:
        raise EmauditError(f"unknown rater {_pk(rater)}")
    if found.study_id is not None and found.study_id != study_id:
        raise EmauditError(f"rater {found.display_name!r} belongs to another study")
    return found


def rated_count(session: Session, study_id: int, rater_id: int) -> int:
    """Items ``rater_id`` has submitted a rating for in ``study_id``."""
    state = (
        _connection(session).execute(_STATE, {"rater": rater_id, "study": study_id, "now": utcnow()}).one()
    )
    return int(state[1])


def items_remaining(session: Session, study: Study | int | str) -> int:
    """Items that still need ratings (fewer than K completed); 0 when the study is done."""
    conn = _connection(session)
    params = _study_params(conn, study, session)
    return int(conn.execute(_REMAINING, {"study": params.id, "overlap": params.overlap}).scalar_one())


def claim_next(
    session: Session, study: Study | int | str, rater: Rater | int, *, now: datetime | None = None
) -> Item | None:
    """Lease the next item to ``rater``, or return the item they already hold.

    Args:
        session: The caller's write transaction (``write_session`` on SQLite).
        study: The study (row, id or name).
        rater: The rater (row or id).
        now: The clock (tests); default now in UTC.

    Returns:
        The blinded :class:`Item`, or None when the rater's quota is reached or no item is left
        for them (every remaining item is full, leased to others, or already theirs).
    """
    now = _utc(now)
    conn = _connection(session)
    claimer = _claimer(conn, session, study, rater)
    if not claimer.active:
        return None
    _release_if_due(conn, claimer.study, now)
    params = {"rater": claimer.id, "study": claimer.study, "now": now}
    held, done = conn.execute(_STATE, params).one()
    if held is not None:
        item = conn.execute(_HELD, {"item": held}).one()
        return Item(item_id=item[1], question=item[2], answer=item[3], done=done, quota=claimer.quota)
    if claimer.quota is not None and done >= claimer.quota:
        return None
    order_a, order_b = rater_order(claimer.seed, claimer.id)
    params |= {
        "overlap": claimer.overlap,
        "expires": now + timedelta(seconds=claimer.lease_seconds),
        "order_a": order_a,
        "order_b": order_b,
    }
    item = _lease_next(conn, params)
    if item is None:
        return None
    return Item(item_id=item[1], question=item[2], answer=item[3], done=done, quota=claimer.quota)


@dataclass(frozen=True)
class _Claimer:
    """The claiming rater (row locked on PostgreSQL) and the study's queue settings."""

    id: int
    quota: int | None
    study: int
    overlap: int
    lease_seconds: int
    seed: int
    active: bool


def _claimer(conn: Connection, session: Session, study: Study | int | str, rater: Rater | int) -> _Claimer:
    """Lock the rater and read the study's settings in one round trip; raise if either is unknown."""
    study_id = _pk(get_study(session, study) if isinstance(study, str) else study)
    found = conn.execute(_CLAIMER, {"rater": _pk(rater), "study": study_id}).first()
    if found is None or found.overlap is None:
        _study_params(conn, study_id, session)  # raises for an unknown study, the first error to report
        raise EmauditError(f"unknown rater {_pk(rater)}")
    if found.study_id is not None and found.study_id != study_id:
        raise EmauditError(f"rater {found.display_name!r} belongs to another study")
    return _Claimer(
        found.id, found.quota, study_id, found.overlap, found.lease, int(found.seed), bool(found.active)
    )


def _lease_next(conn: Connection, params: dict[str, Any]) -> Any:
    """Lease the next open item to the rater; its text row, or None when none is left for them."""
    if conn.dialect.name == "postgresql":
        leased = conn.execute(_CLAIM_ONE_STATEMENT, params).first()
        return leased if leased is not None else conn.execute(_CLAIM_ANY_ONE_STATEMENT, params).first()
    # SQLite has no data-modifying CTEs; under BEGIN IMMEDIATE these round trips are in-process
    # (and nothing is ever locked, so the window's choice is final).
    item = conn.execute(_CANDIDATE, params).first()
    if item is None:
        return None
    conn.execute(
        _NEW_ASSIGNMENT,
        _new_assignment(
            study_id=params["study"],
            item_id=item[0],
            rater_id=params["rater"],
            status=CLAIMED,
            claimed_at=params["now"],
            lease_expires_at=params["expires"],
            submitted_at=None,
        ),
    )
    conn.execute(_ADD_CLAIMED, {"item": item[0]})
    return item


def has_work(
    session: Session, study: Study | int | str, rater: Rater | int, *, now: datetime | None = None
) -> bool:
    """Whether ``rater`` holds a live claim or could claim an item now (no locks taken).

    Leases that have expired but are not yet released count as taken, so a rater may be told
    "nothing left" a few minutes early at the very end of a study; they are released at the next
    claim.
    """
    now = _utc(now)
    conn = _connection(session)
    study_row = _study_params(conn, study, session)
    rater_row = _rater_params(conn, rater, study_row.id)
    params = {"rater": rater_row.id, "study": study_row.id, "now": now, "overlap": study_row.overlap}
    held, done = conn.execute(_STATE, params).one()
    if held is not None:
        return True
    if rater_row.quota is not None and done >= rater_row.quota:
        return False
    return conn.execute(_ANY_OPEN, params).first() is not None


RELEASE_EVERY = timedelta(seconds=1)
"""How often :func:`claim_next` returns expired leases to the pool, per study and process.

Leases last minutes, so a few seconds more before a slot is reusable changes nothing for raters,
while releasing on every claim cost a round trip per claim.
"""
# Per engine (one per app process and database), per study: when claim_next last released.
_last_release: WeakKeyDictionary[Engine, dict[int, datetime]] = WeakKeyDictionary()
_last_release_lock = Lock()


def _release_if_due(conn: Connection, study_id: int, now: datetime) -> None:
    """Release expired leases unless this engine did so for the study less than RELEASE_EVERY ago.

    A clock that went backwards (tests pass ``now``) always releases. If the transaction rolls
    back, the next release is at most RELEASE_EVERY later: expired leases only wait a little longer.
    """
    with _last_release_lock:
        per_study = _last_release.setdefault(conn.engine, {})
        last = per_study.get(study_id)
        if last is not None and last <= now < last + RELEASE_EVERY:
            return
        per_study[study_id] = now
    _release(conn, study_id, now)


def _release(conn: Connection, study_id: int, now: datetime) -> int:
    released = conn.execute(_RELEASE, {"study": study_id, "now": now}).scalars().all()
    per_item: dict[int, int] = defaultdict(int)
    for item_id in released:
        per_item[item_id] += 1
    for item_id, count in per_item.items():
        conn.execute(_REQUEUE, {"item": item_id, "released": count})
    return len(released)


def release_expired(session: Session, study: Study | int | str, *, now: datetime | None = None) -> int:
    """Return expired leases of ``study`` to the pool; the number released.

    An expired assignment keeps its row (status ``expired``), so the rater is not offered that
    item again, and a late submit can still be matched to it. :func:`claim_next` runs it first (at
    most every :data:`RELEASE_EVERY` per study and process), so a running study needs no background
    job; admins may call it to see the count.
    """
    conn = _connection(session)
    return _release(conn, _study_params(conn, study, session).id, _utc(now))


def lock_item(
    session: Session, *, public_id: str | None = None, item_id: int | None = None
) -> LockedItem | None:
    """Lock one item row for the rest of the transaction (by public id or row id)."""
    conn = _connection(session)
    if public_id is not None:
        row = conn.execute(_LOCK_BY_PUBLIC_ID, {"public_id": public_id}).first()
    else:
        row = conn.execute(_LOCK_BY_ID, {"item": item_id}).first()
    return None if row is None else LockedItem(*row)


def submit_rating(
    session: Session,
    item: Item | str,
    rater: Rater | int,
    rating: RatingInput,
    *,
    now: datetime | None = None,
    allow_edit: bool = True,
) -> Rating:
    """Store one rating of ``item`` by ``rater``.

    Args:
        session: The caller's write transaction.
        item: The :class:`Item` from :func:`claim_next`, or its ``item_id``.
        rater: The rater (row or id).
        rating: The rating; validated (:class:`~emaudit.annotate.ratings.InvalidRating`).
        now: The clock (tests).
        allow_edit: Whether a different rating of an item the rater already rated is stored as an
            edit. The app passes False: its form is for a new rating, so a submit from a second tab
            showing the same item must not silently replace what the first tab stored.

    Returns:
        The stored :class:`Rating` (for an identical resubmit, the row stored the first time), a
        detached copy.

    Raises:
        InvalidRating: a score outside 0-100, an unknown label, ...
        UnknownItem: no item with this id.
        ItemFull: the item has no free slot for a rater without a lease on it.
        AlreadyRated: ``allow_edit`` is False and the rater's stored rating differs.
        EmauditError: the rater is unknown or belongs to another study.
    """
    rating = check_rating(rating)
    public_id = item.item_id if isinstance(item, Item) else item
    row = (
        _connection(session).execute(_LOCK_FOR_SUBMIT, {"public_id": public_id, "rater": _pk(rater)}).first()
    )
    if row is None:
        raise UnknownItem(f"no item {public_id!r}")
    if row.rater is None:
        raise EmauditError(f"unknown rater {_pk(rater)}")
    if row.rater_study is not None and row.rater_study != row.study_id:
        raise EmauditError(f"rater {row.display_name!r} belongs to another study")
    locked = LockedItem(*row[:6])
    stored, _ = record_rating(session, locked, row.rater, rating, now=_utc(now), allow_edit=allow_edit)
    return stored


def record_rating(
    session: Session,
    item: LockedItem,
    rater_id: int,
    rating: RatingInput,
    *,
    now: datetime,
    allow_edit: bool = True,
) -> tuple[Rating, str]:
    """Apply the submit rules to a locked item; returns the rating and ``new`` / ``same`` / ``edit``.

    Shared by :func:`submit_rating` and the ratings importer, so both follow one set of rules.
    The returned :class:`Rating` is a detached copy of the stored row.
    """
    conn = _connection(session)
    assignment = conn.execute(_ASSIGNMENT, {"item": item.id, "rater": rater_id}).first()
    values = {
        "item_id": item.id,
        "rater_id": rater_id,
        "alignment": rating.alignment,
        "coherence": rating.coherence,
        "label": rating.label,
        "categories": None if rating.categories is None else list(rating.categories),
        "comment": rating.comment,
        "seconds_on_item": rating.seconds_on_item,
        "supersedes_id": None,
        "created_at": now,
    }
    if assignment is not None and assignment.status == SUBMITTED:
        previous = conn.execute(_LATEST, {"item": item.id, "rater": rater_id}).one()
        if rating.same_rating(previous.alignment, previous.coherence, previous.label, previous.comment):
            # A detached copy, like new ratings and edits: the caller reads it after the commit.
            first = values | {
                "seconds_on_item": previous.seconds_on_item,
                "supersedes_id": previous.supersedes_id,
                "created_at": previous.created_at,
            }
            return Rating(id=previous.id, **first), "same"
        if not allow_edit:
            raise AlreadyRated(f"item {item.public_id} is already rated by this rater")
        values["supersedes_id"] = previous.id
        return Rating(id=conn.execute(_INSERT_RATING, values).scalar_one(), **values), "edit"
    holds_slot = assignment is not None and assignment.status == CLAIMED  # live, or expired but not released
    if not holds_slot and item.n_completed + item.n_claimed >= item.overlap:
        raise ItemFull(
            f"item {item.public_id} already has its {item.overlap} rating(s) or its free slots are "
            "leased to other raters"
        )
    mark: Insert | Update
    if assignment is None and conn.dialect.name == "postgresql":
        # A submit without a claim (the importer, or a rater's other device) takes the rater's
        # row lock that claim_next holds while it chooses: otherwise a claim running meanwhile
        # could choose this very item (its snapshot predates our assignment) and hit the unique
        # (item, rater) constraint. Claims never wait for item locks (SKIP LOCKED), so taking the
        # rater after the item cannot deadlock; a claim that waited here sees our assignment.
        conn.execute(_LOCK_RATER, {"rater": rater_id})
        assignment = conn.execute(_ASSIGNMENT, {"item": item.id, "rater": rater_id}).first()
        if assignment is not None:  # our own claim, committed while we waited for the lock
            return record_rating(session, item, rater_id, rating, now=now, allow_edit=allow_edit)
    if assignment is None:  # a submit without a claim
        mark, mark_params = (
            _NEW_ASSIGNMENT,
            _new_assignment(
                study_id=item.study_id,
                item_id=item.id,
                rater_id=rater_id,
                status=SUBMITTED,
                claimed_at=now,
                lease_expires_at=now,
                submitted_at=now,
            ),
        )
    else:
        mark, mark_params = _SUBMIT_ASSIGNMENT, {"assignment": assignment.id, "now": now}
    complete_params = {"item": item.id, "released": 1 if holds_slot else 0}
    if conn.dialect.name == "postgresql":
        store = _STORE_WITH_NEW_ASSIGNMENT if assignment is None else _STORE_WITH_SUBMITTED_ASSIGNMENT
        rating_params = {f"rating_{name}": value for name, value in values.items()}
        rating_id = conn.execute(store, rating_params | mark_params | complete_params).scalar_one()
    else:  # SQLite has no data-modifying CTEs; under BEGIN IMMEDIATE these round trips are in-process
        rating_id = conn.execute(_INSERT_RATING, values).scalar_one()
        conn.execute(mark, mark_params)
        conn.execute(_COMPLETE, complete_params)
    return Rating(id=rating_id, **values), "new"


_SKIP = (
    update(ASSIGNMENT)
    .where(ASSIGNMENT.c.id == _P("assignment"))
    .values(status=SKIPPED, submitted_at=_P("now"))
)


def skip_item(session: Session, item: Item | str, rater: Rater | int, *, now: datetime | None = None) -> None:
    """Record that ``rater`` skipped ``item``: they are not offered it again, others get it first.

    The skip is an assignment with status ``skipped`` (kept, so skips can be counted per item and
    rater); a lease the rater held is released and the item goes to the head of the queue.

    Raises:
        UnknownItem: no item with this id.
        EmauditError: the rater has already rated the item (an edit, not a skip, changes it).
    """
    now = _utc(now)
    public_id = item.item_id if isinstance(item, Item) else item
    conn = _connection(session)
    locked = lock_item(session, public_id=public_id)
    if locked is None:
        raise UnknownItem(f"no item {public_id!r}")
    rater_id = _pk(rater)
    _rater_params(conn, rater_id, locked.study_id)
    assignment = conn.execute(_ASSIGNMENT, {"item": locked.id, "rater": rater_id}).first()
    if assignment is None:
        conn.execute(
            _NEW_ASSIGNMENT,
            _new_assignment(
                study_id=locked.study_id,
                item_id=locked.id,
                rater_id=rater_id,
                status=SKIPPED,
                claimed_at=now,
                lease_expires_at=now,
                submitted_at=now,
            ),
        )
        return
    if assignment.status == SUBMITTED:
        raise EmauditError(f"item {public_id} is already rated by this rater")
    if assignment.status == SKIPPED:
        return
    conn.execute(_SKIP, {"assignment": assignment.id, "now": now})
    if assignment.status == CLAIMED:
        conn.execute(_REQUEUE, {"item": locked.id, "released": 1})


def release_rater_claims(session: Session, rater_id: int) -> int:
    """Return every claim ``rater_id`` holds to the pool (a deactivated rater); the number released."""
    conn = _connection(session)
    held = conn.execute(
        select(ASSIGNMENT.c.id, ASSIGNMENT.c.item_id).where(
            ASSIGNMENT.c.rater_id == rater_id, ASSIGNMENT.c.status == CLAIMED
        )
    ).all()
    released = 0
    for assignment_id, item_id in held:
        lock_item(session, item_id=item_id)  # item first, then assignment: the queue's lock order
        expired = conn.execute(
            update(ASSIGNMENT)
            .where(ASSIGNMENT.c.id == assignment_id, ASSIGNMENT.c.status == CLAIMED)  # not submitted since
            .values(status=EXPIRED)
        )
        if expired.rowcount == 1:
            conn.execute(_REQUEUE, {"item": item_id, "released": 1})
            released += 1
    return released


def skipped_count(session: Session, study: Study | int | str) -> int:
    """Skips recorded in ``study`` (one per item and rater)."""
    study_id = _pk(_study(session, study))
    return int(
        session.execute(
            select(func.count())
            .select_from(ASSIGNMENT)
            .where(ASSIGNMENT.c.study_id == study_id, ASSIGNMENT.c.status == SKIPPED)
        ).scalar_one()
    )


@dataclass
class RaterProgress:
    """One rater's work in a study; gold accuracy is over their current (latest) gold ratings."""

    rater_id: int
    name: str
    external_id: str | None
    submitted: int
    active_claims: int
    gold_rated: int
    gold_correct: int
    median_seconds: float | None

    @property
    def gold_accuracy(self) -> float | None:
        """Share of gold items rated correctly, or None before the first gold item."""
        return self.gold_correct / self.gold_rated if self.gold_rated else None


@dataclass
class StudyProgress:
    """How far a study is: items, ratings, live leases, and per-rater work and gold accuracy."""

    study: str
    overlap: int
    items: int
    gold_items: int
    items_complete: int
    ratings: int
    ratings_needed: int
    active_claims: int
    expired_claims: int
    raters: list[RaterProgress] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """Whether every item has its K ratings."""
        return self.items_complete == self.items


def study_progress(
    session: Session, study: Study | int | str, *, now: datetime | None = None
) -> StudyProgress:
    """Counts for the admin's progress page and ``emaudit study show``."""
    now = _utc(now)
    row = _study(session, study)
    items, gold, complete, ratings = session.execute(
        select(
            func.count(),
            func.count().filter(ITEM.c.is_gold),
            func.count().filter(ITEM.c.n_completed >= row.overlap),
            func.coalesce(func.sum(ITEM.c.n_completed), 0),
        ).where(ITEM.c.study_id == row.id)
    ).one()
    by_status = dict(
        session.execute(
            select(ASSIGNMENT.c.status, func.count())
            .where(ASSIGNMENT.c.study_id == row.id)
            .group_by(ASSIGNMENT.c.status)
        ).all()
    )
    active = int(
        session.execute(
            select(func.count())
            .select_from(ASSIGNMENT)
            .where(
                ASSIGNMENT.c.study_id == row.id,
                ASSIGNMENT.c.status == CLAIMED,
                ASSIGNMENT.c.lease_expires_at > now,
            )
        ).scalar_one()
    )
    raters: dict[int, RaterProgress] = {}
    rater_rows = session.execute(
        select(Rater)
        .where(
            (RATER.c.study_id == row.id)
            | RATER.c.id.in_(select(ASSIGNMENT.c.rater_id).where(ASSIGNMENT.c.study_id == row.id))
        )
        .order_by(RATER.c.id)
    ).scalars()
    for rater in rater_rows:
        assert rater.id is not None
        raters[rater.id] = RaterProgress(rater.id, rater.display_name, rater.external_id, 0, 0, 0, 0, None)
    for rater_id, status, count in session.execute(
        select(ASSIGNMENT.c.rater_id, ASSIGNMENT.c.status, func.count())
        .where(
            ASSIGNMENT.c.study_id == row.id,
            (ASSIGNMENT.c.status != CLAIMED) | (ASSIGNMENT.c.lease_expires_at > now),
        )
        .group_by(ASSIGNMENT.c.rater_id, ASSIGNMENT.c.status)
    ):
        if status == SUBMITTED:
            raters[rater_id].submitted = int(count)
        elif status == CLAIMED:
            raters[rater_id].active_claims = int(count)
    superseded = select(RATING.c.supersedes_id).where(RATING.c.supersedes_id.is_not(None))
    seconds: dict[int, list[float]] = defaultdict(list)
    for rating, item in session.execute(
        select(Rating, StudyItem)
        .join(StudyItem, ITEM.c.id == RATING.c.item_id)
        .where(ITEM.c.study_id == row.id, RATING.c.id.not_in(superseded))
    ):
        progress = raters[rating.rater_id]
        if rating.seconds_on_item is not None:
            seconds[rating.rater_id].append(rating.seconds_on_item)
        if item.is_gold:
            progress.gold_rated += 1
            progress.gold_correct += gold_correct(item, rating.label, rating.alignment, rating.coherence)
    for rater_id, values in seconds.items():
        raters[rater_id].median_seconds = float(median(values))
    return StudyProgress(
        study=row.name,
        overlap=row.overlap,
        items=int(items),
        gold_items=int(gold),
        items_complete=int(complete),
        ratings=int(ratings),
        ratings_needed=int(items) * row.overlap,
        active_claims=active,
        expired_claims=int(by_status.get(EXPIRED, 0)),
        raters=list(raters.values()),
    )
