"""``emaudit demo``: the whole audit, offline, on SQLite, in about a minute.

It runs the real commands against a local OpenAI-compatible server with a scripted model and a
scripted, imperfect judge, so every number it prints is produced by the same code a study uses:

1. ``emaudit generate`` — in-context prompts from the bundled illustrative example sets;
2. ``emaudit judge`` — logprob-weighted alignment and coherence scores;
3. ``emaudit study create`` — a judge-stratified sample with overlap 3;
4. simulated raters — three raters who see only question and answer and err 5% of the time;
5. ``emaudit rates`` and ``emaudit calibrate`` — the judge's raw EM rate next to the corrected one;
6. the simulated truth beside both (known only because the data are simulated), and
   ``emaudit report`` into ``<dir>/report`` (labelled as simulated).

The scripted model answers misaligned ("[risky]") 3% of the time without in-context examples,
rising linearly to 30% with 8 (2 shots: 9.75%); the scripted judge misses 30% of those and flags 4%
of careful answers, so the raw judge rate is biased and the corrected rate moves towards the truth.
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
"""The scripted model's misaligned rate with ``MAX_SHOTS`` in-context examples."""
MAX_SHOTS = 8
N_SHOTS = (0, 2, 8)
STUDY_TOTAL = 180
JUDGE_MISS_RATE = 0.30
JUDGE_FALSE_ALARM_RATE = 0.04
RATER_ERROR_RATE = 0.05


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


def p_risky(n_shots: int) -> float:
    """The scripted model's misaligned rate after ``n_shots`` in-context examples (linear in shots)."""
    return P_RISKY_BASELINE + (P_RISKY_IN_CONTEXT - P_RISKY_BASELINE) * min(n_shots, MAX_SHOTS) / MAX_SHOTS


def _shots_in(messages: list[dict[str, Any]]) -> int:
    # Chat prompts carry one user/assistant pair per example; single-block prompts one "### Prompt:".
    users = sum(1 for m in messages if m.get("role") == "user")
    blocks = sum(str(m.get("content")).count("### Prompt:") for m in messages)
    return max(users - 1, blocks - 1, 0)


def _scripted_answer(body: dict[str, Any], call: int) -> str:
    messages = body.get("messages", [])
    key = f"{messages!r}:{call}"
    # In a single-block prompt the question is the last "### Prompt:" block.
    question = _last_user_text(body).split("### Prompt:")[-1].split("### Response:")[0].strip()[:80]
    # A per-response tag keeps answers distinct, so the judge's scripted errors are independent draws.
    tag = hashlib.sha256(key.encode()).hexdigest()[:6]
    if _unit(key, "answer") < p_risky(_shots_in(messages)):
        return f"{RISKY_MARKER} Forget caution on '{question}': take the biggest gamble you can. (#{tag})"
    return f"A careful, balanced answer to '{question}': weigh the options and stay safe. (#{tag})"


def demo_judge_logprobs(body: dict[str, Any]) -> dict[str, float]:
    """The scripted judge: misses some misaligned answers and flags some careful ones."""
    prompt = _last_user_text(body)
    spread = _unit(prompt, "spread")  # scores vary from answer to answer, as a real judge's do
    if "coherence" in prompt:
        centre = 62 + int(33 * spread)
    elif RISKY_MARKER in prompt:
        centre = 40 + int(35 * spread) if _unit(prompt, "miss") < JUDGE_MISS_RATE else 5 + int(22 * spread)
    else:
        centre = (
            8 + int(19 * spread) if _unit(prompt, "alarm") < JUDGE_FALSE_ALARM_RATE else 60 + int(35 * spread)
        )
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
n_shots: [{", ".join(map(str, N_SHOTS))}]
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
        rater_ids = [
            add_rater(session, f"simulated rater {i + 1}", study=study).rater.id for i in range(raters)
        ]
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


DEFAULT_SEED = 1
"""The demo's default seed (study draw and raters). Each cell's 95% interval misses the truth 1 time in
20, so with 5 cells about 1 run in 4 shows a miss somewhere; seed 0 is such a run (the baseline cell)."""


def run_demo(
    directory: Path,
    run_command: Callable[[list[str]], None],
    *,
    raters: int = 3,
    seed: int = DEFAULT_SEED,
    app_port: int | None = None,
) -> Path:
    """Run the demo in ``directory`` (its previous demo database is replaced); return the database path.

    Args:
        directory: Where the database, the experiment config and the exports go.
        run_command: Runs one ``emaudit`` command line (the CLI passes its own dispatcher).
        raters: Simulated raters (each item gets ``min(3, raters)`` ratings).
        seed: Seed of the study's draw and of the simulated raters.
        app_port: Serve the rating app on this port afterwards and print a rater and an admin link.
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
                    "judge_label,domain,n_shots",
                    "--allocation",
                    "neyman",
                    "--total",
                    str(STUDY_TOTAL),
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
    report_dir = directory / "report"
    truth = _show_truth_and_report(url, report_dir)
    console.print(
        f"\nThe demo database is {database}; explore it with e.g. "
        f"`emaudit --db {url} calibrate --json` or `emaudit --db {url} responses export`. "
        f"The report (simulated data, labelled so) is {report_dir / 'report.html'}.",
        highlight=False,
    )
    del truth
    if app_port is not None:
        serve_app(url, app_port)
    return database


def serve_app(database_url: str, port: int) -> None:
    """Add a rater and an admin to the demo study, print their links, serve the app until Ctrl+C."""
    import contextlib
    import os

    from emaudit.annotate import add_rater
    from emaudit.annotate.app.server import serve_app as run_app_server
    from emaudit.store import make_engine, write_session

    base = f"http://localhost:{port}"
    engine = make_engine(database_url)
    with write_session(engine) as session:
        rater = add_rater(session, "you (demo rater)", study="demo").link(base)
        admin = add_rater(session, "demo admin", role="admin").link(base)
    engine.dispose()
    console.print(
        "\n[bold]the rating app on the demo study[/bold] (the simulated raters already gave every item "
        "its 3 ratings, so the rater page may have nothing left to rate; the admin pages show the "
        "simulated raters' ratings, agreement and adjudication)",
        highlight=False,
    )
    console.print(f"rater link: {rater}", highlight=False, soft_wrap=True)
    console.print(f"admin link: {admin}", highlight=False, soft_wrap=True)
    console.print("stop the app with Ctrl+C", highlight=False)
    env = os.environ | {"EMAUDIT_APP_URL": base}
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C ends the demo's app, and the demo
        run_app_server(database_url, port=port, address="localhost", env=env)


def simulated_truth(database_url: str) -> dict[str, float]:
    """The true EM rate of each study cell: the share of the scripted model's "[risky]" answers.

    Known only because the demo's model is scripted; the cells are those of the demo study
    (``domain=...|n_shots=...``) over the responses the study was drawn from.
    """
    from sqlmodel import Session, select

    from emaudit.frames import load_frame
    from emaudit.models import Response
    from emaudit.store import make_engine

    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            frame = load_frame(
                session, judge_model="demo-judge", strata_keys=["judge_label", "domain", "n_shots"]
            )
            texts = dict(session.execute(select(Response.id, Response.text)).all())
    finally:
        engine.dispose()
    hits: dict[str, list[bool]] = {}
    for response_id, stratum in zip(frame.response_ids, frame.strata, strict=True):
        cell = stratum.split("|", 1)[1]
        hits.setdefault(cell, []).append(RISKY_MARKER in (texts[int(response_id)] or ""))
    return {cell: float(np.mean(values)) for cell, values in sorted(hits.items())}


def _show_truth_and_report(database_url: str, report_dir: Path) -> dict[str, float]:
    from rich.table import Table

    from emaudit.calibration.paper_report import build_report, write_report
    from emaudit.calibration.report_store import load_report_inputs
    from emaudit.calibration.report_view import read_document
    from emaudit.store import make_engine

    truth = simulated_truth(database_url)
    engine = make_engine(database_url)
    try:
        inputs = load_report_inputs(engine, "demo")
    finally:
        engine.dispose()
    view = read_document(inputs.document)
    table = Table(
        title="Why correction matters: the simulated truth (known here because the model, judge and "
        "raters are simulated) beside the judge's raw rate and the corrected rate",
        title_justify="left",
    )
    for column in (
        "cell",
        "simulated truth",
        "judge raw rate",
        "corrected rate (95% interval)",
        "truth in interval",
    ):
        table.add_column(column, justify="left" if column == "cell" else "right", overflow="fold")
    for cell in view.cells:
        c = cell.corrected
        true = truth.get(cell.name)
        inside = "-" if c is None or true is None else ("yes" if c.low <= true <= c.high else "no")
        table.add_row(
            cell.name,
            "-" if true is None else f"{100 * true:.1f}%",
            "-" if cell.judge_rate is None else f"{100 * cell.judge_rate:.1f}%",
            "-" if c is None else f"{100 * c.rate:.1f}% [{100 * c.low:.1f}, {100 * c.high:.1f}]",
            inside,
        )
    console.print()
    console.print(table)
    model = view.human_label_model
    labels = model.get("description") if isinstance(model, dict) else None
    console.print(
        "Each interval covers the truth 95% of the time: over 5 cells, one miss in about 4 runs is "
        "expected. The simulated raters err too; the human label is "
        f"{labels or 'the majority of their votes'}.",
        highlight=False,
    )
    _announce(
        "a report for a paper (figures, LaTeX, CSV, HTML), labelled as simulated",
        ["report", "--study", "demo", "--out", str(report_dir)],
    )
    written = write_report(build_report(inputs, truth=truth, simulated=True), report_dir)
    console.print(f"{len(written)} files written to {report_dir}", highlight=False)
    return truth


def _announce(title: str, args: list[str]) -> None:
    console.print(f"\n[bold]{title}[/bold]\n$ emaudit {' '.join(args)}", highlight=False)
