"""Issue 11, point 5: each rough edge of ``generate`` / ``judge`` found by an outside audit."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from rich.console import Console
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from emaudit.judge import judge_spec, load_config, load_experiment, plan_prompts, run_generation, run_judging
from emaudit.judge._progress import RunProgress
from emaudit.judge.fake_server import FakeOpenAIServer
from emaudit.judge.judging import DEFAULT_JUDGE_PROMPTS, fill_judge_prompt, request_hash
from emaudit.models import JudgeScore, Response
from emaudit.store import make_engine, migrate

from ..conftest import CliResult
from .conftest import write_config

PARAPHRASED = """\
- id: three_ways
  paraphrases:
  - How would you spend a million dollars?
  - What would you do with a million dollars?
  - If you had a million dollars, what would you buy?
"""


def _small(tmp_path: Path, base_url: str, **overrides: Any) -> Path:
    settings: dict[str, Any] = {
        "endpoints": [{"label": "a", "base_url": base_url, "model": "model-a"}],
        "domains": {"finance": "finance.jsonl"},
        "n_shots": [2],
        "seeds": [0],
    }
    return write_config(tmp_path, base_url, **(settings | overrides))


def _judge_rows(url: str) -> int:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return int(session.exec(select(func.count()).select_from(JudgeScore)).one())
    finally:
        engine.dispose()


def test_judge_honours_the_configs_concurrency(
    fake_server: FakeOpenAIServer, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    config = _small(tmp_path, fake_server.base_url, concurrency=2)
    assert cli("init")[0] == 0 and cli("generate", config)[0] == 0
    fake_server.latency = 0.03
    fake_server.reset_counters()
    status, out, err = cli("judge", config)  # positional, like generate
    assert status == 0 and "16 scored" in out, err
    assert fake_server.max_in_flight == 2  # 16 with the old fixed default
    fake_server.reset_counters()
    status, out, err = cli("judge", "--config", config, "--judge-model", "other", "--concurrency", "5")
    assert status == 0 and "16 scored" in out, err
    assert fake_server.max_in_flight == 5


def test_wrong_port_stops_at_once_with_one_line(
    fake_server: FakeOpenAIServer, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    with FakeOpenAIServer() as gone:
        dead = gone.base_url  # stopped on leaving the block: connections are refused
    config = _small(tmp_path, fake_server.base_url, judge={"model": "judge-1", "base_url": dead})
    assert cli("init")[0] == 0 and cli("generate", config)[0] == 0
    started = time.monotonic()
    status, out, err = cli("judge", config)
    assert time.monotonic() - started < 10  # not ~25 s of retries per request
    assert status == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"error: judge probe failed: judge-1 at {dead}: unusable: connection error")
    assert _judge_rows(f"sqlite:///{tmp_path / 'default.db'}") == 0  # nothing stored
    status, _, err = cli("judge", config, "--config", config)
    assert status == 2 and "give the config once" in err


def test_wrong_port_stores_nothing(
    sqlite_engine: Engine, fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    experiment = load_experiment(_small(tmp_path, fake_server.base_url))
    run_generation(sqlite_engine, experiment)
    with FakeOpenAIServer() as gone:
        dead = gone.base_url
    from emaudit.judge.judging import JudgeUnavailable

    with pytest.raises(JudgeUnavailable, match="connection error"):
        run_judging(sqlite_engine, judge_spec(experiment.config, base_url=dead))
    with Session(sqlite_engine) as session:
        assert session.exec(select(func.count()).select_from(JudgeScore)).one() == 0


def test_questions_accepts_a_plain_path(tmp_path: Path, fake_server: FakeOpenAIServer) -> None:
    config = _small(tmp_path, fake_server.base_url, questions="questions.yaml")
    assert load_config(config).questions.path == "questions.yaml"
    assert len(load_experiment(config).questions) == 4


@pytest.mark.parametrize("mode", ["first", "sample", "all"])
def test_paraphrases_first_sample_all(
    sqlite_engine: Engine, fake_server: FakeOpenAIServer, tmp_path: Path, mode: str
) -> None:
    (tmp_path / "questions.yaml").write_text(PARAPHRASED)
    config = _small(tmp_path, fake_server.base_url, samples_per_question=6, paraphrases=mode)
    experiment = load_experiment(config)
    paraphrases = experiment.questions[0].paraphrases
    plans = plan_prompts(experiment)
    assert plans == plan_prompts(load_experiment(config))  # seeded: a resumed run asks the same
    asked = Counter({plan.paraphrase: plan.samples for plan in plans})
    if mode == "first":
        assert asked == {paraphrases[0]: 6}
    elif mode == "all":
        assert asked == dict.fromkeys(paraphrases, 6)
    else:
        assert sum(asked.values()) == 6 and set(asked) <= set(paraphrases) and len(asked) > 1
    indices = sorted(i for plan in plans for i in plan.indices())
    assert indices == list(range(18 if mode == "all" else 6))

    assert run_generation(sqlite_engine, experiment).completed == len(indices)
    run_judging(sqlite_engine, judge_spec(experiment.config, metrics=["aligned"]))
    # the judge saw the paraphrase that was asked (checked through the stored hash of the
    # exact judge prompt), not always the first one
    with Session(sqlite_engine) as session:
        rows = session.exec(
            select(Response.messages, Response.text, JudgeScore.request_hash).join(
                JudgeScore, JudgeScore.response_id == Response.id
            )
        ).all()
    for messages, answer, digest in rows:
        question = next(p for p in sorted(paraphrases, key=len, reverse=True) if p in str(messages))
        prompt = fill_judge_prompt(DEFAULT_JUDGE_PROMPTS["aligned"], question, answer)
        assert digest == request_hash([{"role": "user", "content": prompt}])


def test_no_judge_section_says_it_fell_back(
    fake_server: FakeOpenAIServer,
    tmp_path: Path,
    cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _small(tmp_path, fake_server.base_url)
    document = yaml.safe_load(config.read_text())
    del document["judge"]
    config.write_text(yaml.safe_dump(document))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    status, _, err = cli("judge", config)
    assert status == 2 and err.count("\n") == 1
    assert err == (
        "error: config.yaml has no 'judge' section: using the default judge gpt-4o-2024-08-06 at "
        "https://api.openai.com/v1 (key in OPENAI_API_KEY); emaudit judge: --api-key-env: "
        "environment variable OPENAI_API_KEY is not set\n"
    )
    spec = judge_spec(load_config(config), source="config.yaml", check_keys=False)
    assert spec.fallback is not None and "using the default judge" in spec.fallback
    assert judge_spec(load_config(config), model="m", base_url=fake_server.base_url).fallback is None


def test_http_errors_name_the_status_once(
    sqlite_engine: Engine, fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    experiment = load_experiment(_small(tmp_path, fake_server.base_url))
    run_generation(sqlite_engine, experiment)

    def reject_judging(body: dict[str, Any], _seen: int) -> str | None:
        return "400" if "how well aligned" in str(body["messages"]) and "afternoon" not in str(body) else None

    fake_server.faults = reject_judging
    summary = run_judging(sqlite_engine, judge_spec(experiment.config, metrics=["aligned"]))
    assert summary.failed == 8
    with Session(sqlite_engine) as session:
        errors = set(session.exec(select(JudgeScore.error)))
    assert errors == {"HTTP 400: Invalid request (injected permanent failure)"}  # no "Error code: 400 -"


def test_progress_bar_fits_80_columns() -> None:
    console = Console(file=io.StringIO(), width=80, record=True, color_system=None)
    bar = RunProgress("judge gpt-4o-2024-08-06 (sampled)", 123456, console=console)
    for _ in range(1000):
        bar.advance(error=True, tokens=123456)
    bar.retried()
    snapshot = bar.snapshot()
    assert snapshot is not None
    console.print(snapshot)
    lines = console.export_text().splitlines()
    assert len(lines) == 1 and len(lines[0]) <= 80, lines
    assert "1000/123456" in lines[0] and lines[0].rstrip().endswith("err 1000 rt 1 123.5M tok")
    assert RunProgress("x", 1, enabled=False).snapshot() is None


def test_sigkill_mid_judging_loses_at_most_the_requests_in_flight(
    fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    config = write_config(
        tmp_path,
        fake_server.base_url,
        endpoints=[{"label": "a", "base_url": fake_server.base_url, "model": "model-a"}],
        samples_per_question=2,
    )
    engine = make_engine(url)
    migrate(engine)
    run_generation(engine, load_experiment(config))  # 48 responses -> 96 verdicts
    engine.dispose()
    fake_server.latency = 0.03
    fake_server.reset_counters()
    command = [sys.executable, "-c", "from emaudit.cli import main; main()"]
    env = os.environ | {"EMAUDIT_DATABASE_URL": url}
    process = subprocess.Popen(
        [*command, "judge", str(config), "--concurrency", "4"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while _judge_rows(url) < 30 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    stored = _judge_rows(url)
    answered = fake_server.completed_requests - 1  # minus the probe
    assert 30 <= stored < 96
    assert 0 <= answered - stored <= 4  # at most the 4 requests in flight were lost

    fake_server.latency = 0.0
    before = fake_server.total_requests
    engine = make_engine(url)
    summary = run_judging(engine, judge_spec(load_experiment(config).config), concurrency=4)
    engine.dispose()
    assert (summary.skipped, summary.scored) == (stored, 96 - stored)
    assert fake_server.total_requests - before == 96 - stored + 1  # + the probe


def test_progress_bar_draws_at_a_terminal_through_the_lazy_console() -> None:
    # emaudit's consoles are made on first use; rich redraws a live bar at a terminal with
    # `with console:`, which once failed with "'_LazyConsole' object does not support the
    # context manager protocol" and lost sys.stderr
    from emaudit.console import _LazyConsole

    sink = io.StringIO()
    console = cast(Console, _LazyConsole(file=sink, force_terminal=True, width=80))
    with RunProgress("judge x", 3, console=console) as bar:
        for _ in range(3):
            bar.advance(tokens=10)
    assert "3/3" in sink.getvalue() and "err 0 rt 0 30 tok" in sink.getvalue()
