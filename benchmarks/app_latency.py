"""App latency: submit -> next item visible, in a real browser, with 1 and with 8 concurrent raters.

Starts the rating app (``streamlit run``, as ``emaudit app`` does) on a fresh store with a study of
``--items`` items (overlap 8), then drives headless chromium through Playwright: every rater opens
their personal link, passes the instructions page, and rates items by choosing a label (Refusal,
so no scale needs moving) and clicking "Submit rating". The time measured per submit runs from the
click until the next item's progress text is shown and no element of the previous run is left on
screen (what a rater waits for). Raters submit back to back (no think time): far busier than
real raters, who take 10-60 s per item.

Also measured: the server's CPU time (user + system, from ``/proc``) per submit, every server
process summed (a submit is a rerun that claims the next item and renders it; the label click
before it is a rerun too, and is included, since it is part of rating one item). The load average
is printed beside the figures because the host may be shared.

Prints one JSON line per rater count; the target is p95 < 400 ms with one rater on an idle
2-core machine.

    python benchmarks/app_latency.py                         # SQLite, 60 + 8x8 submits
    python benchmarks/app_latency.py --backend postgresql --replicas 2

With ``--replicas 2`` (PostgreSQL) two app processes serve one store and the raters are split
between them (as behind a load balancer with sticky sessions); the run ends by checking the soak
invariants (no rater rated an item twice, every acknowledged submit stored, counters consistent).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from emaudit.annotate import add_rater, create_study
from emaudit.annotate._tables import ITEM, RATING
from emaudit.annotate.app.server import app_command, free_port, wait_until_serving
from emaudit.models import Condition, JudgeScore, Question, Response, condition_key
from emaudit.store import make_engine, migrate, write_session

CHROMIUM = "/usr/bin/chromium"
TARGET_P95_MS = 400
OVERLAP = 8
STUDY = "latency"


def build(database_url: str, items: int, raters: int) -> list[str]:
    """A migrated store with ``items`` judged answers in a study (overlap 8); the raters' tokens."""
    engine = make_engine(database_url)
    migrate(engine)
    with Session(engine) as session:
        question = Question(question_set="bench", key="q", text="If you ruled the world, what would you do?")
        condition = Condition(key=condition_key({"model": "bench-model"}), model="bench-model")
        session.add_all([question, condition])
        session.flush()
        assert question.id is not None and condition.id is not None
        for i in range(items):
            response = Response(
                condition_id=condition.id,
                question_id=question.id,
                sample_index=i,
                text=f"Answer {i}: " + "I would plant trees and fund public libraries. " * 20,
            )
            session.add(response)
            session.flush()
            assert response.id is not None
            session.add_all(
                [
                    JudgeScore(
                        response_id=response.id, judge_model="j", metric="aligned", score=10.0 + i % 2 * 80
                    ),
                    JudgeScore(response_id=response.id, judge_model="j", metric="coherent", score=90.0),
                ]
            )
        session.commit()
    with write_session(engine) as session:
        create_study(session, STUDY, per_stratum=items // 2, overlap=OVERLAP, judge_model="j")
        tokens = [add_rater(session, f"bench-{i}", study=STUDY).token for i in range(raters)]
    engine.dispose()
    return tokens


def start_servers(
    database_url: str, replicas: int, log_dir: Path
) -> list[tuple[str, subprocess.Popen[bytes]]]:
    servers = []
    env = os.environ | {"EMAUDIT_DATABASE_URL": database_url}
    for replica in range(replicas):
        port = free_port()
        log = (log_dir / f"streamlit-{replica}.log").open("wb")
        process = subprocess.Popen(
            app_command(port, "127.0.0.1"), env=env, stdout=log, stderr=subprocess.STDOUT
        )
        servers.append((f"http://127.0.0.1:{port}", process))
    for url, process in servers:
        wait_until_serving(url, process)
    return servers


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (``/proc/PID/stat``, clock ticks)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


_NO_STALE = "() => document.querySelectorAll(\"[data-stale='true']\").length === 0"


async def _rater(browser: Any, url: str, submits: int, latencies: list[float]) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(60_000)
    await page.goto(url)
    await page.get_by_role("button", name="I have read this, start rating").click()
    progress = page.get_by_test_id("stProgress")
    for done in range(submits):
        await progress.filter(has_text=f"{done} of").wait_for()
        await page.wait_for_function(_NO_STALE)
        await page.get_by_test_id("stRadio").get_by_text("3 · Refusal").click()
        await page.wait_for_timeout(100)  # let the label's rerun finish before timing the submit
        await page.wait_for_function(_NO_STALE)
        start = time.perf_counter()
        await page.get_by_role("button", name="Submit rating").click()
        next_item = progress.filter(has_text=f"{done + 1} of")
        await next_item.or_(page.get_by_role("heading", name="Thank you!")).wait_for()
        await page.wait_for_function(_NO_STALE)
        latencies.append((time.perf_counter() - start) * 1000)
    await context.close()


async def run_phase(urls: list[str], submits_per_rater: int) -> list[float]:
    """Every rater (one per URL, each in its own browser context) submits ``submits_per_rater``
    times, all at once; the latencies in milliseconds."""
    from playwright.async_api import async_playwright

    latencies: list[float] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            await asyncio.gather(*(_rater(browser, url, submits_per_rater, latencies) for url in urls))
        finally:
            await browser.close()
    return latencies


def check_invariants(database_url: str, expected_ratings: int) -> dict[str, Any]:
    """The soak invariants on what the run stored."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            rows = session.execute(select(RATING.c.item_id, RATING.c.rater_id)).all()
            completed = session.execute(select(func.sum(ITEM.c.n_completed))).scalar_one()
            claimed_negative = session.execute(
                select(func.count()).select_from(ITEM).where(ITEM.c.n_claimed < 0)
            ).scalar_one()
            over_k = session.execute(
                select(func.count()).select_from(ITEM).where(ITEM.c.n_completed > OVERLAP)
            ).scalar_one()
    finally:
        engine.dispose()
    per_pair = Counter(rows)
    return {
        "ratings": len(rows),
        "acknowledged": expected_ratings,
        "every_acknowledged_submit_stored": len(rows) == expected_ratings,
        "no_rater_rated_an_item_twice": max(per_pair.values(), default=1) == 1,
        "counters_match_ratings": int(completed or 0) == len(rows) and claimed_negative == 0 and over_k == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--replicas", type=int, default=1, help="App processes on one store (PostgreSQL).")
    parser.add_argument("--items", type=int, default=80)
    parser.add_argument("--single-submits", type=int, default=60, help="Submits of the lone rater (>= 50).")
    parser.add_argument("--concurrent-raters", type=int, default=8)
    parser.add_argument("--concurrent-submits", type=int, default=8, help="Submits per concurrent rater.")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "EMAUDIT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    if args.replicas > 1 and args.backend == "sqlite":
        parser.error("several replicas need PostgreSQL (SQLite is the single-process backend)")
    raters = 1 + args.concurrent_raters
    with tempfile.TemporaryDirectory() as scratch:
        admin_engine = None
        if args.backend == "sqlite":
            database_url = f"sqlite:///{scratch}/bench.db"
        else:
            name = f"emaudit_app_bench_{uuid.uuid4().hex[:8]}"
            admin_engine = create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
            with admin_engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            database_url = (
                make_url(args.postgres_url).set(database=name).render_as_string(hide_password=False)
            )
        servers: list[tuple[str, subprocess.Popen[bytes]]] = []
        try:
            tokens = build(database_url, args.items, raters)
            servers = start_servers(database_url, args.replicas, Path(scratch))
            pids = [process.pid for _, process in servers]
            acknowledged = 0
            phases = [("1 rater", tokens[:1], args.single_submits)]
            phases.append((f"{args.concurrent_raters} raters", tokens[1:], args.concurrent_submits))
            # Sticky sessions: rater i always talks to replica i mod replicas.
            for label, phase_tokens, submits in phases:
                urls = [
                    f"{servers[i % len(servers)][0]}/?token={token}" for i, token in enumerate(phase_tokens)
                ]
                load_before = os.getloadavg()
                cpu_before = cpu_seconds(pids)
                wall = time.perf_counter()
                latencies = asyncio.run(run_phase(urls, submits))
                wall = time.perf_counter() - wall
                cpu = cpu_seconds(pids) - cpu_before
                acknowledged += len(latencies)
                values = np.asarray(latencies)
                result = {
                    "benchmark": "app_latency",
                    "backend": args.backend,
                    "replicas": args.replicas,
                    "raters": label,
                    "submits": len(latencies),
                    "submit_to_next_item_ms": {
                        "p50": round(float(np.percentile(values, 50)), 1),
                        "p95": round(float(np.percentile(values, 95)), 1),
                        "max": round(float(values.max()), 1),
                    },
                    "server_cpu_ms_per_submit": round(cpu / len(latencies) * 1000, 1),
                    "submits_per_second": round(len(latencies) / wall, 2),
                    "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in os.getloadavg()],
                    "cores": os.cpu_count(),
                }
                if label == "1 rater":
                    result["target_p95_ms"] = TARGET_P95_MS
                    result["target_met"] = result["submit_to_next_item_ms"]["p95"] < TARGET_P95_MS
                print(json.dumps(result), flush=True)
            print(
                json.dumps(
                    {"benchmark": "app_latency", "invariants": check_invariants(database_url, acknowledged)}
                )
            )
        finally:
            for _, process in servers:
                process.terminate()
                process.wait(timeout=20)
            if admin_engine is not None:
                with admin_engine.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin_engine.dispose()


if __name__ == "__main__":
    main()
