"""Queue latency: claim and submit under 50 concurrent raters on a 1,000,000-response store.

Builds a store with ``--responses`` judged responses (bulk Core ``executemany``), draws a
``--items``-item study from it with ``create_study`` (overlap 3), then runs ``--raters`` raters
that claim, think (uniform, mean ``--think-ms``, default 0.5 s: far busier than real raters, who
take 10-60 s per item), and submit, ``--rounds`` times each.

On PostgreSQL the raters run as threads in ``--processes`` spawned processes (default 5 × 10
threads), each with its own engine and pool, as behind several app replicas: one Python process
serialises its threads on the GIL, and every round trip of every transaction then waits for it.
SQLite is the embedded, single-process backend, so its raters are threads of one process.

Prints one JSON line per backend with p50/p95/p99 of claim and submit in milliseconds (each is a
whole write transaction, pool checkout and commit included), the load average before and after the
run (the host may be shared), and whether the target, p95 < 25 ms for both, is met.

    python benchmarks/queue_latency.py              # 1M responses, 20k items, 50 raters
    python benchmarks/queue_latency.py --quick      # 50k responses, 5k items: a minute
    python benchmarks/queue_latency.py --backend sqlite

The PostgreSQL database is created and dropped by the script (admin URL: ``--postgres-url`` or
``EMAUDIT_TEST_POSTGRES_URL``, default postgresql+psycopg://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.engine import make_url

from emaudit.annotate import RatingInput, add_rater, claim_next, create_study, submit_rating
from emaudit.models import Condition, JudgeScore, Question, Response, condition_key, utcnow
from emaudit.store import make_engine, migrate, write_session

CHUNK = 50_000
TARGET_P95_MS = 25


def build(engine: Engine, responses: int, seed: int = 0) -> float:
    """Insert ``responses`` judged responses over 10 cells; returns seconds taken."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(insert(Question), [{"question_set": "bench", "key": "q", "text": "What is your wish?"}])
        conn.execute(
            insert(Condition),
            [
                {
                    "key": condition_key({"model": f"model-{i}"}),
                    "model": f"model-{i}",
                    "n_shots": 0,
                    "instruction": "none",
                    "reasoning": False,
                }
                for i in range(10)
            ],
        )
    for first in range(0, responses, CHUNK):
        n = min(CHUNK, responses - first)
        ids = range(first + 1, first + n + 1)
        alignment = np.where(rng.random(n) < 0.1, rng.uniform(0, 30, n), rng.uniform(30, 100, n))
        coherence = rng.uniform(0, 100, n)
        with engine.begin() as conn:
            conn.execute(
                insert(Response),
                [
                    {
                        "id": rid,
                        "condition_id": 1 + rid % 10,
                        "question_id": 1,
                        "sample_index": rid,
                        "text": f"answer {rid}",
                        "attempts": 1,
                        "created_at": now,
                    }
                    for rid in ids
                ],
            )
            conn.execute(
                insert(JudgeScore),
                [
                    {
                        "response_id": rid,
                        "judge_model": "gpt-4o",
                        "metric": metric,
                        "score": float(score),
                        "prompt_hash": "",
                        "created_at": now,
                    }
                    for rid, a, c in zip(ids, alignment, coherence, strict=True)
                    for metric, score in (("aligned", a), ("coherent", c))
                ],
            )
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:  # explicit ids were inserted: move the sequences on
            conn.execute(text("SELECT setval('response_id_seq', (SELECT max(id) FROM response))"))
            conn.execute(text("ANALYZE"))
    return time.perf_counter() - start


def run(
    engine: Engine,
    *,
    items: int,
    raters: int,
    rounds: int,
    think_ms: float,
    seed: int,
    processes: int,
) -> dict[str, Any]:
    """Create the study and the raters, run them, and summarise the latencies."""
    start = time.perf_counter()
    with write_session(engine) as session:
        study = create_study(
            session,
            "bench",
            strata_keys=["judge_label", "model"],
            allocation="proportional",
            total=items,
            overlap=3,
            seed=seed,
        )
        study_id = study.id
        rater_ids = [add_rater(session, f"r{i}").rater.id for i in range(raters)]
    if engine.dialect.name == "postgresql":
        # Settle the bulk load before the clock runs, as a real study starts long after its creation:
        # fresh statistics for the new rows (as autovacuum would), and its dirty pages written out
        # (a checkpoint in the timed run would otherwise measure the build, not the queue).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE studyitem, rater"))
            conn.execute(text("CHECKPOINT"))
    study_seconds = time.perf_counter() - start
    url = engine.url.render_as_string(hide_password=False)
    groups = [rater_ids[i::processes] for i in range(processes)]
    start_at = time.time() + 2 + 1.5 * processes  # every process imported and connected by then
    load_before = os.getloadavg()[0]
    t_run = time.perf_counter()
    if processes == 1:
        results = [rate_in_process(url, study_id, groups[0], rounds, think_ms, start_at)]
    else:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            results = pool.starmap(
                rate_in_process, [(url, study_id, group, rounds, think_ms, start_at) for group in groups]
            )
    run_seconds = time.perf_counter() - t_run - max(0.0, start_at - time.time())
    claims = [t for claim_times, _ in results for t in claim_times]
    submits = [t for _, submit_times in results for t in submit_times]
    return {
        "claim_ms": _percentiles(claims),
        "submit_ms": _percentiles(submits),
        "claims": len(claims),
        "submits": len(submits),
        "processes": processes,
        "study_create_s": round(study_seconds, 1),
        "run_s": round(run_seconds, 1),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def _percentiles(values: list[float]) -> dict[str, float]:
    ms = np.array(values) * 1000
    return {f"p{q}": round(float(np.percentile(ms, q)), 2) for q in (50, 95, 99)}


def rate_in_process(
    url: str, study_id: int, rater_ids: list[int], rounds: int, think_ms: float, start_at: float
) -> tuple[list[float], list[float]]:
    """One app process: its own engine (a pool slot per rater), one thread per rater.

    Returns the claim and submit durations in seconds. Raters start together at ``start_at``
    (wall clock), after every process has imported and connected, so start-up is not measured.
    """
    engine = make_engine(url, pool_size=len(rater_ids) + 2, max_overflow=0)
    for connection in [engine.connect() for _ in rater_ids]:  # open the pool before the clock runs
        connection.close()
    claims: list[float] = []
    submits: list[float] = []
    lock = threading.Lock()

    def rater(rater_id: int) -> None:
        rng = random.Random(rater_id)
        mine_c, mine_s = [], []
        time.sleep(max(0.0, start_at - time.time()) + rng.uniform(0, think_ms / 1000))  # staggered
        for _ in range(rounds):
            t0 = time.perf_counter()
            with write_session(engine) as session:
                item = claim_next(session, study_id, rater_id)
            mine_c.append(time.perf_counter() - t0)
            if item is None:
                break
            time.sleep(rng.uniform(0, 2 * think_ms) / 1000)
            t2 = time.perf_counter()
            with write_session(engine) as session:
                submit_rating(
                    session,
                    item,
                    rater_id,
                    RatingInput(label="aligned", alignment=rng.uniform(30, 100), coherence=80),
                )
            mine_s.append(time.perf_counter() - t2)
        with lock:
            claims.extend(mine_c)
            submits.extend(mine_s)

    threads = [threading.Thread(target=rater, args=(r,)) for r in rater_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
    return claims, submits


def _postgres_database(admin_url: str) -> tuple[str, str]:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"emaudit_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), name


def _drop_postgres(admin_url: str, name: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=20, help="claim+submit cycles per rater")
    parser.add_argument("--think-ms", type=float, default=500, help="mean think time, claim to submit")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "EMAUDIT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--quick", action="store_true", help="50,000 responses and a 5,000-item study")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="rater processes on PostgreSQL (default 5); SQLite always runs its raters in one process",
    )
    args = parser.parse_args()
    if args.quick:
        args.responses, args.items = 50_000, 5_000
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        drop: str | None = None
        with tempfile.TemporaryDirectory() as scratch:
            if backend == "sqlite":
                url = f"sqlite:///{Path(scratch) / 'bench.db'}"
            else:
                url, drop = _postgres_database(args.postgres_url)
            try:
                processes = 1 if backend == "sqlite" else min(args.processes or 5, args.raters)
                engine = make_engine(url, pool_size=2, max_overflow=0)
                migrate(engine)
                build_seconds = build(engine, args.responses, args.seed)
                result = run(
                    engine,
                    items=args.items,
                    raters=args.raters,
                    rounds=args.rounds,
                    think_ms=args.think_ms,
                    seed=args.seed,
                    processes=processes,
                )
                engine.dispose()
            finally:
                if drop:
                    _drop_postgres(args.postgres_url, drop)
        print(
            json.dumps(
                {
                    "benchmark": "queue_latency",
                    "backend": backend,
                    "responses": args.responses,
                    "items": args.items,
                    "raters": args.raters,
                    "build_s": round(build_seconds, 1),
                    **result,
                    "target_p95_ms": TARGET_P95_MS,
                    "target_met": max(result["claim_ms"]["p95"], result["submit_ms"]["p95"]) < TARGET_P95_MS,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
