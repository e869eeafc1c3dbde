"""Retries, timeouts, malformed bodies, permanent failures and rate limits, over real HTTP."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from emaudit.judge import judge_spec, load_experiment, run_generation, run_judging
from emaudit.judge.client import ChatClient, RateLimiter, RequestFailed, RetryPolicy
from emaudit.judge.fake_server import FakeOpenAIServer, Fault, random_faults
from emaudit.models import JudgeScore, Response

from .conftest import write_config

pytestmark = pytest.mark.usefixtures("fake_key")


def _small(tmp_path: Path, server: FakeOpenAIServer, **overrides: Any) -> Path:
    settings: dict[str, Any] = {"n_shots": [2], "seeds": [0]}
    settings.update(overrides)
    return write_config(tmp_path, server.base_url, **settings)


def test_twenty_percent_429_and_500_still_completes(
    sqlite_engine: Engine, fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    fake_server.faults = random_faults(0.2, ("429", "500"), seed=7)
    experiment = load_experiment(write_config(tmp_path, fake_server.base_url))

    summary = run_generation(sqlite_engine, experiment)
    judged = run_judging(sqlite_engine, judge_spec(experiment.config))

    faults = fake_server.fault_counts()
    assert faults["429"] > 10 and faults["500"] > 10
    # roughly 20% of all requests failed once and were retried
    assert 0.1 < sum(faults.values()) / fake_server.total_requests < 0.3
    assert (summary.completed, summary.failed) == (96, 0)
    assert (judged.scored, judged.failed) == (192, 0)
    with Session(sqlite_engine) as session:
        responses = session.exec(select(Response)).all()
    assert len(responses) == 96 and all(r.error is None for r in responses)
    assert max(r.attempts for r in responses) >= 2  # the attempts count is kept


def test_permanent_400_is_stored_as_an_error_and_not_retried(
    sqlite_engine: Engine, fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    def reject_sports(body: dict[str, Any], _seen: int) -> str | None:
        return "400" if "sports question" in str(body["messages"]) else None

    fake_server.faults = reject_sports
    experiment = load_experiment(_small(tmp_path, fake_server))
    summary = run_generation(sqlite_engine, experiment)

    # 2 endpoints x 2 domains x 3 questions x 2 samples; the sports half is rejected
    assert (summary.completed, summary.failed) == (12, 12)
    with Session(sqlite_engine) as session:
        failed = session.exec(select(Response).where(Response.error.is_not(None))).all()  # type: ignore[union-attr]
    assert len(failed) == 12
    assert all(r.text is None and r.attempts == 1 and "HTTP 400" in (r.error or "") for r in failed)
    assert fake_server.fault_counts()["400"] == 12  # one attempt each: a 400 is never retried

    # errors are not judged, and a plain re-run does not ask again ...
    judged = run_judging(sqlite_engine, judge_spec(experiment.config))
    assert judged.planned == 24
    before = fake_server.total_requests
    assert run_generation(sqlite_engine, experiment).skipped == 24
    assert fake_server.total_requests == before
    # ... but --retry-errors does, and fills the same rows in place
    fake_server.faults = None
    retried = run_generation(sqlite_engine, experiment, retry_errors=True)
    assert (retried.skipped, retried.completed) == (12, 12)
    with Session(sqlite_engine) as session:
        rows = session.exec(select(Response)).all()
    assert len(rows) == 24 and all(r.error is None and r.text for r in rows)


def test_timeouts_and_malformed_bodies_are_retried(
    sqlite_engine: Engine, fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    def first_attempt_breaks(body: dict[str, Any], seen: int) -> str | None:
        if seen == 0:
            return "hang" if "finance" in str(body["messages"]) else "malformed"
        return None

    fake_server.faults = first_attempt_breaks
    fake_server.hang_seconds = 2.0
    path = _small(
        tmp_path,
        fake_server,
        samples_per_question=1,
        retry={"max_attempts": 3, "base_delay": 0.001, "timeout": 0.3},
    )
    summary = run_generation(sqlite_engine, load_experiment(path))

    assert (summary.completed, summary.failed) == (12, 0)
    assert fake_server.fault_counts() == {"hang": 6, "malformed": 6}
    assert set(fake_server.prompt_counts().values()) == {2}


def test_missing_logprobs_are_retried_then_recorded_not_dropped(
    sqlite_engine: Engine, fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    experiment = load_experiment(_small(tmp_path, fake_server, samples_per_question=1))
    run_generation(sqlite_engine, experiment)

    # the first judge attempt of every prompt lacks logprobs; aligned prompts never get them
    def no_logprobs(body: dict[str, Any], seen: int) -> str | None:
        if not body.get("logprobs"):
            return None
        return "no_logprobs" if seen == 0 or "how well aligned" in str(body["messages"]) else None

    fake_server.faults = no_logprobs
    # no probe: it would see the aligned prompt without logprobs and switch to sampled mode
    judged = run_judging(sqlite_engine, judge_spec(experiment.config, mode="logprobs"), probe=False)

    assert (judged.scored, judged.failed) == (12, 12)
    with Session(sqlite_engine) as session:
        scores = session.exec(select(JudgeScore)).all()
    by_metric = Counter((s.metric, s.score is None, s.special, s.error is None) for s in scores)
    assert by_metric == {("coherent", False, None, True): 12, ("aligned", True, "UNPARSEABLE", False): 12}
    assert all("no logprobs" in (s.error or "") for s in scores if s.metric == "aligned")

    fake_server.faults = None
    again = run_judging(sqlite_engine, judge_spec(experiment.config), retry_errors=True)
    assert (again.skipped, again.scored) == (12, 12)


def test_retry_after_is_honoured(fake_server: FakeOpenAIServer) -> None:
    fake_server.faults = lambda _body, seen: Fault("429", retry_after=0.4) if seen < 2 else None
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    async def call() -> int:
        client = ChatClient(
            fake_server.base_url, retry=RetryPolicy(base_delay=0.001, max_delay=5), rng=random.Random(0)
        )
        try:
            result = await client.complete(
                model="m", messages=[{"role": "user", "content": "hi"}], params={}, sleep=record
            )
        finally:
            await client.close()
        return result.attempts

    assert asyncio.run(call()) == 3
    assert len(slept) == 2 and all(0.4 <= s <= 0.41 for s in slept)


def test_backoff_grows_exponentially_with_full_jitter() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        draws = [policy.backoff(attempt, None, rng) for _ in range(200)]
        assert min(draws) >= 0 and max(draws) <= ceiling and max(draws) > ceiling * 0.8
    assert policy.backoff(1, 30.0, rng) == 8.0  # Retry-After is capped by max_delay


def test_gives_up_after_max_attempts(fake_server: FakeOpenAIServer) -> None:
    fake_server.faults = lambda _body, _seen: "500"

    async def call() -> None:
        client = ChatClient(fake_server.base_url, retry=RetryPolicy(max_attempts=3, base_delay=0.001))
        try:
            await client.complete(model="m", messages=[{"role": "user", "content": "x"}], params={})
        finally:
            await client.close()

    with pytest.raises(RequestFailed, match=r"HTTP 500.*gave up after 3 attempts") as info:
        asyncio.run(call())
    assert info.value.attempts == 3 and not info.value.permanent
    assert fake_server.total_requests == 3


def test_rate_limiter_spaces_requests_and_tokens() -> None:
    async def timed(limiter: RateLimiter, calls: int, tokens: int) -> float:
        start = time.monotonic()
        for _ in range(calls):
            await limiter.acquire(tokens)
        return time.monotonic() - start

    # 600 rpm = 10/s: a full minute's bucket, then 5 more take 0.5 s
    assert 0.4 < asyncio.run(timed(RateLimiter(rpm=600), 605, 0)) < 1.0
    # 6000 tpm = 100 tokens/s: 6000 at once, then 50 more take 0.5 s
    assert 0.4 < asyncio.run(timed(RateLimiter(tpm=6000), 121, 50)) < 1.0
    assert asyncio.run(timed(RateLimiter(), 1000, 10**6)) < 0.1
