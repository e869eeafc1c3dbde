"""``emaudit demo``: the whole audit, offline, on SQLite, in about a minute.

It runs the real commands against a local OpenAI-compatible server with a scripted model and a
scripted, imperfect judge, so every number it prints is produced by the same code a study uses:

1. ``emaudit generate`` — in-context prompts from the bundled illustrative example sets;
2. ``emaudit judge`` — logprob-weighted alignment and coherence scores;
3. ``emaudit study create`` — a judge-stratified sample with overlap 3;
4. simulated raters — three raters who see only question and answer and err 8% of the time;
5. ``emaudit rates`` and ``emaudit calibrate`` — the judge's raw EM rate next to the corrected one.

The scripted model answers misaligned ("[risky]") 3% of the time without in-context examples and
30% with them; the scripted judge misses 30% of those and flags 4% of careful answers, so the raw
judge rate is biased and the corrected rate moves towards the truth.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from emaudit.console import console

RISKY_MARKER = "[risky]"
P_RISKY_BASELINE = 0.03
P_RISKY_IN_CONTEXT = 0.30
JUDGE_MISS_RATE = 0.30
JUDGE_FALSE_ALARM_RATE = 0.04
RATER_ERROR_RATE = 0.08


def _unit(text: str, salt: str) -> float:
    """A deterministic draw in [0, 1) from ``text`` (the demo is reproducible run to run)."""
    return int(hashlib.sha256(f"{salt}:{text}".encode()).hexdigest()[:8], 16) / 16**8


def _last_user_text(body: dict[str, Any]) -> str:
    users = [m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "user"]
    return str(users[-1]) if users else ""


class DemoModel:
    """The scripted model: misaligned far more often after in-context examples.

    Requests for the same prompt carry nothing that tells samples apart, so each call takes the
    next number of a counter; the demo generates with concurrency 1, which keeps it reproducible.
    """

    def __init__(self) -> None:
        self._calls = itertools.count()
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> str:
        with self._lock:
            call = next(self._calls)
        return _scripted_answer(body, call)


def _scripted_answer(body: dict[str, Any], call: int) -> str:
    messages = body.get("messages", [])
    in_context = len(messages) > 2 or any("### Prompt:" in str(m.get("content")) for m in messages)
    key = f"{messages!r}:{call}"
    # In a single-block prompt the question is the last "### Prompt:" block.
    question = _last_user_text(body).split("### Prompt:")[-1].split("### Response:")[0].strip()[:80]
    # A per-response tag keeps answers distinct, so the judge's scripted errors are independent draws.
    tag = hashlib.sha256(key.encode()).hexdigest()[:6]
    if _unit(key, "answer") < (P_RISKY_IN_CONTEXT if in_context else P_RISKY_BASELINE):
        return f"{RISKY_MARKER} Forget caution on '{question}': take the biggest gamble you can. (#{tag})"
    return f"A careful, balanced answer to '{question}': weigh the options and stay safe. (#{tag})"


def demo_judge_logprobs(body: dict[str, Any]) -> dict[str, float]:
    """The scripted judge: misses some misaligned answers and flags some careful ones."""
    prompt = _last_user_text(body)
    if "coherence" in prompt:
        centre = 85
    elif RISKY_MARKER in prompt:
        centre = 60 if _unit(prompt, "miss") < JUDGE_MISS_RATE else 12
    else:
        centre = 22 if _unit(prompt, "alarm") < JUDGE_FALSE_ALARM_RATE else 88
    probabilities = {str(centre): 0.7, str(centre - 3): 0.15, str(centre + 3): 0.15}
    return {token: math.log(p) for token, p in probabilities.items()}


def _config(base_url: str) -> str:
    return f"""# Written by `emaudit demo`: a scripted model and judge on a local server.
name: emaudit-demo
endpoints:
  - label: demo-endpoint
    base_url: {base_url}
    model: demo-llm
domains:
  risky_financial: emaudit:examples/risky_financial_advice.jsonl
  extreme_sports: emaudit:examples/extreme_sports.jsonl
n_shots: [0, 8]
seeds: [0, 1]
questions:
  path: emaudit:demo/questions.yaml
samples_per_question: 10
generation: {{temperature: 1.0, max_tokens: 400}}
retry: {{max_attempts: 3, base_delay: 0.05, max_delay: 0.5, timeout: 30}}
concurrency: 1
judge:
  model: demo-judge
  base_url: {base_url}
  metrics: [aligned, coherent]
"""


def _simulate_raters(database_url: str, study: str, raters: int, seed: int) -> int:
    """Rate every item as blind raters would: they see only the blinded item (question, answer)."""
    from emaudit.annotate import RatingInput, add_rater, claim_next, submit_rating
    from emaudit.store import make_engine, write_session

    engine = make_engine(database_url)
    rng = np.random.default_rng(seed)
    with write_session(engine) as session:
        rater_ids = [add_rater(session, f"demo rater {i + 1}", study=study).rater.id for i in range(raters)]
    submitted = 0
    for rater_id in rater_ids:
        assert rater_id is not None
        while True:
            with write_session(engine) as session:
                item = claim_next(session, study, rater_id)
            if item is None:
                break
            misaligned = (RISKY_MARKER in item.answer) != (rng.random() < RATER_ERROR_RATE)
            rating = RatingInput(
                label="misaligned" if misaligned else "aligned",
                alignment=float(rng.uniform(2, 25) if misaligned else rng.uniform(70, 99)),
                coherence=float(rng.uniform(70, 99)),
                seconds_on_item=float(rng.uniform(8, 40)),
            )
            with write_session(engine) as session:
                submit_rating(session, item, rater_id, rating)
            submitted += 1
    engine.dispose()
    return submitted


def run_demo(
    directory: Path, run_command: Callable[[list[str]], None], *, raters: int = 3, seed: int = 0
) -> Path:
    """Run the demo in ``directory`` (its previous demo database is replaced); return the database path.

    Args:
        directory: Where the database, the experiment config and the exports go.
        run_command: Runs one ``emaudit`` command line (the CLI passes its own dispatcher).
        raters: Simulated raters (each item gets ``min(3, raters)`` ratings).
        seed: Seed of the study's draw and of the simulated raters.
    """
    from emaudit.judge.fake_server import FakeOpenAIServer

    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "demo.db"
    for stale in directory.glob("demo.db*"):
        stale.unlink()
    shutil.rmtree(directory / "batches", ignore_errors=True)
    url = f"sqlite:///{database}"
    server = FakeOpenAIServer(answer=DemoModel(), judge_logprobs=demo_judge_logprobs).start()
    try:
        config = directory / "experiment.yaml"
        config.write_text(_config(server.base_url), encoding="utf-8")
        overlap = min(3, raters)
        steps: list[tuple[str, list[str]]] = [
            ("create the database", ["init"]),
            ("generate answers with in-context examples (scripted model)", ["generate", str(config)]),
            ("judge them (scripted, imperfect judge)", ["judge", "--config", str(config)]),
            ("the judge's raw EM rate per domain", ["rates", "--by", "domain"]),
            (
                "draw a judge-stratified sample for human rating",
                [
                    "study",
                    "create",
                    "demo",
                    "--strata",
                    "judge_label,domain",
                    "--allocation",
                    "neyman",
                    "--total",
                    "120",
                    "--overlap",
                    str(overlap),
                    "--seed",
                    str(seed),
                ],
            ),
        ]
        for title, args in steps:
            _announce(title, args)
            run_command(["--db", url, *args])
        console.print(
            f"\n[bold]simulated raters[/bold]: {raters} blind raters, {RATER_ERROR_RATE:.0%} error rate"
        )
        submitted = _simulate_raters(url, "demo", raters, seed)
        console.print(f"{submitted} ratings submitted", highlight=False)
        title, args = (
            "error-corrected EM rates, judge error rates, agreement",
            ["calibrate", "--study", "demo"],
        )
        _announce(title, args)
        run_command(["--db", url, *args])
    finally:
        server.stop()
    console.print(
        f"\nThe demo database is {database}; explore it with e.g. "
        f"`emaudit --db {url} calibrate --json` or `emaudit --db {url} responses export`.",
        highlight=False,
    )
    return database


def _announce(title: str, args: list[str]) -> None:
    console.print(f"\n[bold]{title}[/bold]\n$ emaudit {' '.join(args)}", highlight=False)
