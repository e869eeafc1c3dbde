"""Simulated raters for the soak tests: run in threads, or in 'spawn' processes (importable by path)."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlmodel import Session

from emaudit.annotate import ItemFull, RatingInput, claim_next, submit_rating
from emaudit.annotate.queue import items_remaining
from emaudit.store import make_engine, write_session

LABELS = ("misaligned", "aligned", "refusal")


@dataclass
class RaterLog:
    """What one simulated rater saw: every submit the queue acknowledged, and claims it abandoned."""

    rater_id: int
    acknowledged: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    refused: int = 0
    resubmits: int = 0


def rate(
    engine: Engine, study_id: int, rater_id: int, *, abandon: bool, seed: int, deadline: float
) -> RaterLog:
    """Claim, think for a few ms, submit, until the study is done; an abandoning rater walks away
    from its second claim (its lease must expire and go back to the pool)."""
    rng = random.Random(seed)
    log = RaterLog(rater_id)
    while time.monotonic() < deadline:
        with write_session(engine) as session:
            item = claim_next(session, study_id, rater_id)
        if item is None:
            with Session(engine) as session:
                if items_remaining(session, study_id) == 0:
                    return log
            time.sleep(0.1)  # others hold the remaining leases; some may expire
            continue
        time.sleep(rng.uniform(0.001, 0.01))  # think time
        if abandon and len(log.acknowledged) >= 1:
            log.abandoned.append(item.item_id)
            return log  # closes the tab mid-item
        label = rng.choice(LABELS)
        rating = RatingInput(
            label=label,
            alignment=rng.uniform(0, 100),
            coherence=rng.uniform(0, 100),
            seconds_on_item=rng.uniform(1, 60),
        )
        try:
            with write_session(engine) as session:
                stored = submit_rating(session, item, rater_id, rating)
        except ItemFull:
            log.refused += 1  # the lease lapsed and the slot went to someone else: not acknowledged
            continue
        log.acknowledged.append(item.item_id)  # the transaction committed: the rater saw "saved"
        if rng.random() < 0.2:  # a double click: the same rating again, read after its commit
            with write_session(engine) as session:
                again = submit_rating(session, item, rater_id, rating)
            if (again.id, again.label) != (stored.id, stored.label):
                raise AssertionError(f"identical resubmit returned {again.id}, first was {stored.id}")
            log.resubmits += 1
    raise TimeoutError(f"rater {rater_id} did not finish")


def rate_in_threads(
    engine: Engine, study_id: int, raters: list[tuple[int, bool]], deadline: float
) -> list[RaterLog]:
    """Run one thread per ``(rater_id, abandons)``; re-raise the first error."""
    logs: list[RaterLog] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(rater_id: int, abandon: bool) -> None:
        try:
            log = rate(engine, study_id, rater_id, abandon=abandon, seed=rater_id, deadline=deadline)
        except BaseException as error:
            errors.append(error)
            return
        with lock:
            logs.append(log)

    threads = [threading.Thread(target=run, args=r) for r in raters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return logs


def process_main(url: str, study_id: int, raters: list[tuple[int, bool]], seconds: float) -> list[RaterLog]:
    """Entry point of one spawned process (one app replica): its own engine, several raters."""
    engine = make_engine(url, pool_size=len(raters), max_overflow=0)
    try:
        return rate_in_threads(engine, study_id, raters, time.monotonic() + seconds)
    finally:
        engine.dispose()
