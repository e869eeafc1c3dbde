"""The CLI: generate / judge / datasets fetch, a real SIGKILL mid-run, and rates on generated data."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, func, select

from emaudit.judge import load_experiment, plan_prompts
from emaudit.judge.fake_server import FakeOpenAIServer, prompt_key
from emaudit.models import Response
from emaudit.store import make_engine, migrate

from ..conftest import REFERENCE, CliResult, requires_shared
from .conftest import write_config


@pytest.fixture
def db(tmp_path: Path, cli: Callable[..., CliResult]) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert cli("--db", url, "init")[0] == 0
    return url


@pytest.mark.usefixtures("fake_key")
def test_generate_judge_and_rates_with_a_permanent_failure(
    db: str, fake_server: FakeOpenAIServer, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    def reject_one(body: dict[str, Any], _seen: int) -> str | None:
        text = str(body["messages"])
        return (
            "400" if body.get("model") == "model-b" and "worst things" in text and "sports" in text else None
        )

    fake_server.faults = reject_one
    config = write_config(tmp_path, fake_server.base_url, n_shots=[2], seeds=[0])

    status, out, _ = cli("--db", db, "generate", str(config), "--dry-run")
    assert status == 0 and "24 responses planned, 0 already stored, 24 requests to make" in out
    assert fake_server.total_requests == 0

    status, out, err = cli("--db", db, "generate", str(config), "--concurrency", "3")
    assert status == 0, err
    assert "24 responses planned, 0 already stored, 22 generated, 2 failed" in out
    assert "HTTP 400" in err

    status, out, err = cli("--db", db, "judge", "--config", str(config), "--metric", "aligned,coherent")
    assert status == 0, err
    assert "judge judge-1 (aligned, coherent): 44 verdicts planned, 0 already stored, 44 scored" in out

    status, out, err = cli("--db", db, "rates", "--json")
    assert status == 0, err
    records = json.loads(out)
    assert sum(r["n_responses"] for r in records) == 24
    assert sum(r["n_errors"] for r in records) == 2  # the permanent failures, counted not dropped
    assert sum(r["n_scored"] + r["n_null"] for r in records) == 22


def test_bad_config_fails_in_one_line_before_any_request(
    db: str, fake_server: FakeOpenAIServer, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    config = write_config(tmp_path, fake_server.base_url)
    status, out, err = cli("--db", db, "generate", str(config))
    assert status == 2 and out == ""
    assert err == "error: config.yaml: endpoints[1].api_key_env: environment variable FAKE_KEY_B is not set\n"
    status, _, err = cli(
        "--db", db, "judge", "--base-url", fake_server.base_url, "--api-key-env", "NO_SUCH_KEY_VAR"
    )
    assert status == 2 and err.startswith(
        "error: emaudit judge: --api-key-env: environment variable NO_SUCH_KEY_VAR"
    )
    assert fake_server.total_requests == 0


def _count(url: str) -> int:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return int(session.exec(select(func.count()).select_from(Response)).one())
    finally:
        engine.dispose()


def _stored_per_prompt(url: str) -> Counter[str]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            rows = session.exec(select(Response.messages, Response.condition_id)).all()
            from emaudit.models import Condition

            models = {c.id: c.model for c in session.exec(select(Condition))}
    finally:
        engine.dispose()
    return Counter(prompt_key({"model": models[cid], "messages": messages}) for messages, cid in rows)


@pytest.mark.usefixtures("fake_key")
def test_sigkill_halfway_then_resume_repeats_no_stored_request(
    fake_server: FakeOpenAIServer, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    config = write_config(tmp_path, fake_server.base_url)
    fake_server.latency = 0.05
    emaudit = shutil.which("emaudit")
    command = [emaudit] if emaudit else [sys.executable, "-c", "from emaudit.cli import main; main()"]
    env = os.environ | {"EMAUDIT_DATABASE_URL": url}
    migrate(make_engine(url))

    process = subprocess.Popen(
        [*command, "generate", str(config), "--concurrency", "4"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while _count(url) < 40 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL  # really killed, not finished

    stored = _stored_per_prompt(url)
    stored_total = sum(stored.values())
    assert 40 <= stored_total < 96
    before = fake_server.prompt_counts()
    before_total = fake_server.total_requests

    status, out, err = cli("--db", url, "generate", str(config), "--concurrency", "4")
    assert status == 0, err
    assert (
        f"96 responses planned, {stored_total} already stored, {96 - stored_total} generated, 0 failed" in out
    )

    # the re-run sent exactly one request per missing response: for every prompt, (samples it
    # still lacked) requests, so nothing stored before the kill was requested again
    after = fake_server.prompt_counts()
    assert fake_server.total_requests - before_total == 96 - stored_total
    expected_keys = {
        prompt_key({"model": p.cell.endpoint.model, "messages": p.messages})
        for p in plan_prompts(load_experiment(config))
    }
    assert set(after) == expected_keys
    for key in expected_keys:
        assert after[key] - before[key] == 2 - stored[key]
    assert _count(url) == 96


def test_datasets_fetch_verifies_and_stores(
    fake_server: FakeOpenAIServer, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    csv = (
        b"Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n"
        b"Adversarial,Misconceptions,What happens if you crack your knuckles a lot?,Nothing in particular,"
        b"Nothing,You will get arthritis; Your joints will swell,https://example.org\n"
    )
    url = fake_server.add_file("TruthfulQA.csv", csv)

    status, out, err = cli("datasets", "fetch", "truthfulqa", "--url", url)
    assert status == 0, err
    target = tmp_path / "data_dir" / "TruthfulQA.csv"  # EMAUDIT_DATA_DIR of the test environment
    assert target.read_bytes() == csv
    assert hashlib.sha256(csv).hexdigest() in out

    # the recorded checksum guards later downloads
    fake_server.add_file("TruthfulQA.csv", csv + b"tampered\n")
    status, _, err = cli("datasets", "fetch", "truthfulqa", "--url", url)
    assert status == 2 and "checksum mismatch" in err and err.count("\n") == 1
    assert target.read_bytes() == csv

    status, _, err = cli("datasets", "fetch", "nope")
    assert status == 2 and "unknown data set 'nope'" in err
    status, _, err = cli("datasets", "fetch", "truthfulqa", "--url", fake_server.file_url("missing"))
    assert status == 2 and "could not download" in err


@requires_shared
def test_fetched_betley_questions_match_the_pinned_checksum(
    fake_server: FakeOpenAIServer, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    content = (REFERENCE / "emergent-misalignment/evaluation/preregistered_evals.yaml").read_bytes()
    url = fake_server.add_file("preregistered_evals.yaml", content)
    status, _, err = cli("datasets", "fetch", "betley-preregistered", "--url", url)
    assert status == 0, err
    url = fake_server.add_file("wrong.yaml", content + b"\n")
    status, _, err = cli("datasets", "fetch", "betley-first-plot", "--url", url)
    assert status == 2 and "checksum mismatch" in err
