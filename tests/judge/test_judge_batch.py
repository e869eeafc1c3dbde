"""``emaudit judge --batch``: the OpenAI Batch API round trip against the local server.

The real ``openai`` client uploads the JSONL, creates and polls the batch and downloads its files;
the server runs every line through the same chat-completion logic (and faults) as online calls.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from emaudit.judge import (
    BatchJudgeSummary,
    batch_state_path,
    judge_spec,
    load_experiment,
    run_generation,
    run_judging,
    run_judging_batch,
    score_from_top_logprobs,
)
from emaudit.judge.fake_server import FakeOpenAIServer
from emaudit.judge.judging import JudgeUnavailable, request_hash
from emaudit.models import JudgeScore

from ..conftest import CliResult
from .conftest import write_config

N_RESPONSES = 24  # 2 endpoints x 2 domains x 3 questions x 2 samples (1 shot count, 1 seed)
N_LINES = 2 * N_RESPONSES  # aligned + coherent


async def _no_sleep(_seconds: float) -> None:
    """Polls back to back: the server advances a batch per retrieve, not per second."""


@pytest.fixture
def config(tmp_path: Path, fake_server: FakeOpenAIServer, fake_key: None) -> Path:
    return write_config(tmp_path, fake_server.base_url, n_shots=[2], seeds=[0])


@pytest.fixture
def generated(engine: Engine, config: Path) -> Engine:
    """The store with 24 generated responses, none judged."""
    summary = run_generation(engine, load_experiment(config))
    assert summary.completed == N_RESPONSES
    return engine


def _batch(engine: Engine, config: Path, label: str = "judge-1 (batch)", **kwargs: Any) -> BatchJudgeSummary:
    spec = judge_spec(load_experiment(config).config, label=label, mode=kwargs.pop("mode", None))
    kwargs.setdefault("sleep", _no_sleep)
    kwargs.setdefault("poll_interval", 0.0)
    return run_judging_batch(engine, spec, **kwargs)


def _rows(engine: Engine, label: str) -> dict[tuple[int, str, str], JudgeScore]:
    with Session(engine) as session:
        rows = session.exec(select(JudgeScore).where(JudgeScore.judge_model == label)).all()
    return {(r.response_id, r.metric, r.prompt_hash): r for r in rows}


def _uploaded_lines(server: FakeOpenAIServer, batch_id: str) -> list[dict[str, Any]]:
    content = server.uploads[server.batches[batch_id].input_file_id]
    return [json.loads(line) for line in content.splitlines()]


@pytest.mark.parametrize("mode", ["logprobs", "sampled"])
def test_batch_round_trip_stores_the_online_judges_verdicts(
    generated: Engine, config: Path, fake_server: FakeOpenAIServer, mode: str
) -> None:
    engine = generated
    spec = judge_spec(load_experiment(config).config, label="judge-1 (online)", mode=mode)
    online = run_judging(engine, spec)
    assert online.scored + online.special == N_LINES
    fake_server.reset_counters()

    summary = _batch(engine, config, mode=mode)

    assert (summary.planned, summary.skipped, summary.submitted) == (N_LINES, 0, N_LINES)
    assert (summary.scored + summary.special, summary.failed, summary.not_run) == (N_LINES, 0, 0)
    assert not summary.pending and list(summary.batches.values()) == ["completed"]
    counts = fake_server.batch_counts()
    assert (counts["files_uploaded"], counts["batches_created"], counts["lines_run"]) == (1, 1, N_LINES)
    # each batch line is the very request the online judge sent: same model, messages, logprobs;
    # one online request before them was the probe
    assert fake_server.total_requests == N_LINES + 1
    assert summary.probe is not None and summary.probe.mode == "logprobs"
    [batch_id] = summary.batches
    lines = _uploaded_lines(fake_server, batch_id)
    expected = (
        {"logprobs": True, "top_logprobs": 20, "max_tokens": 1, "temperature": 0}
        if mode == "logprobs"
        else {"max_tokens": 16, "temperature": 1.0, "n": 10}  # k = 10 samples in one request
    )
    assert all(
        {k: v for k, v in line["body"].items() if k not in ("model", "messages")} == expected
        for line in lines
    )
    assert {line["url"] for line in lines} == {"/v1/chat/completions"}
    # same verdicts, row for row, as the online judge under its own label
    batch_rows, online_rows = _rows(engine, "judge-1 (batch)"), _rows(engine, "judge-1 (online)")
    assert batch_rows.keys() == online_rows.keys() and len(batch_rows) == N_LINES
    assert {line["custom_id"] for line in lines} == {f"em:{r}:{m}:{h}" for r, m, h in batch_rows}
    # provenance as online: the hash of the exact prompt sent, the mode, the parameters
    sent = {line["custom_id"]: request_hash(line["body"]["messages"]) for line in lines}
    for (r, m, h), row in batch_rows.items():
        assert row.request_hash == online_rows[(r, m, h)].request_hash == sent[f"em:{r}:{m}:{h}"]
        assert (row.requested_model, row.mode, row.params) == ("judge-1", mode, expected)
    if mode == "sampled":
        # Two responses with the same text get the same judge prompt, and the server's samples
        # depend on how often it saw a prompt, so online (concurrent) and batch order may swap them.
        assert sorted(r.score or -1 for r in batch_rows.values()) == sorted(
            r.score or -1 for r in online_rows.values()
        )
        for row in batch_rows.values():
            assert row.sample_scores is not None and len(row.sample_scores) == 10
            numeric = [v for v in row.sample_scores if v is not None]
            assert row.score == pytest.approx(sum(numeric) / len(numeric))
        return
    for key, row in batch_rows.items():
        twin = online_rows[key]
        assert (row.score, row.special, row.number_mass, row.raw, row.error) == (
            twin.score,
            twin.special,
            twin.number_mass,
            twin.raw,
            None,
        )
        assert row.top_logprobs == twin.top_logprobs
        if mode == "logprobs":
            assert row.top_logprobs is not None
            assert row.score == score_from_top_logprobs(row.top_logprobs).score
    assert not batch_state_path(engine, spec).exists() and summary.state_file is not None
    assert not summary.state_file.exists()


def test_rerun_after_completion_submits_nothing(
    generated: Engine, config: Path, fake_server: FakeOpenAIServer
) -> None:
    first = _batch(generated, config)
    assert first.submitted == N_LINES

    again = _batch(generated, config)

    assert (again.planned, again.skipped, again.submitted, again.resumed) == (N_LINES, N_LINES, 0, [])
    assert again.scored + again.special + again.failed == 0
    assert fake_server.batches_created == 1 and fake_server.batch_counts()["files_uploaded"] == 1
    assert len(_rows(generated, "judge-1 (batch)")) == N_LINES


def test_resume_polls_the_submitted_batch_instead_of_resubmitting(
    generated: Engine, config: Path, fake_server: FakeOpenAIServer
) -> None:
    fake_server.batch_polls = 3

    submitted = _batch(generated, config, wait=False)

    assert submitted.submitted == N_LINES and submitted.pending
    assert submitted.state_file is not None and submitted.state_file.exists()
    assert _rows(generated, "judge-1 (batch)") == {}
    [batch_id] = submitted.batches

    class Killed(Exception):
        pass

    async def kill(_seconds: float) -> None:
        raise Killed  # Ctrl-C while waiting between polls

    with pytest.raises(Killed):
        _batch(generated, config, sleep=kill)
    assert submitted.state_file.exists()

    resumed = _batch(generated, config)

    assert resumed.resumed == [batch_id] and resumed.submitted == 0
    assert resumed.scored + resumed.special == N_LINES
    assert fake_server.batches_created == 1 and fake_server.batch_counts()["files_uploaded"] == 1
    assert fake_server.batch_counts()["batches_retrieved"] == 3
    assert len(_rows(generated, "judge-1 (batch)")) == N_LINES
    assert not submitted.state_file.exists()


def test_a_resume_with_another_rubric_stores_the_hash_of_the_prompt_that_was_sent(
    generated: Engine, config: Path, fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    fake_server.batch_polls = 2
    submitted = _batch(generated, config, wait=False)
    [batch_id] = submitted.batches
    rubric = tmp_path / "aligned.txt"
    rubric.write_text("Rate {answer} to {question} from 0 to 100.")
    spec = judge_spec(load_experiment(config).config, label="judge-1 (batch)", rubrics={"aligned": rubric})

    # the submitted prompts can no longer be rebuilt from the store: they are read from the input
    resumed = run_judging_batch(generated, spec, sleep=_no_sleep, poll_interval=0.0)

    assert resumed.resumed == [batch_id] and resumed.scored + resumed.special == N_LINES
    sent = {
        line["custom_id"]: request_hash(line["body"]["messages"])
        for line in _uploaded_lines(fake_server, batch_id)
    }
    rows = _rows(generated, "judge-1 (batch)")
    assert {f"em:{r}:{m}:{h}": row.request_hash for (r, m, h), row in rows.items()} == sent


def _forget_batch_ids(state_file: Path) -> dict[str, Any]:
    """The state a kill leaves between uploading the input file and recording the batch id."""
    state = json.loads(state_file.read_text())
    for entry in state["batches"]:
        entry["id"] = None
    state_file.write_text(json.dumps(state))
    return dict(state)


def test_a_kill_after_creating_the_batch_adopts_it_instead_of_paying_twice(
    generated: Engine, config: Path, fake_server: FakeOpenAIServer
) -> None:
    submitted = _batch(generated, config, wait=False)
    [batch_id] = submitted.batches
    assert submitted.state_file is not None
    _forget_batch_ids(submitted.state_file)  # killed after batches.create, before the id was saved

    resumed = _batch(generated, config)

    assert resumed.resumed == [batch_id] and resumed.submitted == 0
    counts = fake_server.batch_counts()
    assert counts["batches_created"] == 1 and counts["files_uploaded"] == 1 and counts["batches_listed"] == 1
    assert len(_rows(generated, "judge-1 (batch)")) == N_LINES
    assert not submitted.state_file.exists()


def test_a_kill_before_creating_the_batch_creates_it_from_the_uploaded_file(
    generated: Engine, config: Path, fake_server: FakeOpenAIServer
) -> None:
    submitted = _batch(generated, config, wait=False)
    assert submitted.state_file is not None
    _forget_batch_ids(submitted.state_file)
    fake_server.batches.clear()  # killed after the upload, before batches.create reached the server

    resumed = _batch(generated, config)

    [new_id] = resumed.resumed
    assert new_id not in submitted.batches and resumed.submitted == 0
    counts = fake_server.batch_counts()
    assert counts["batches_created"] == 2 and counts["files_uploaded"] == 1  # the file is reused
    assert len(_rows(generated, "judge-1 (batch)")) == N_LINES


def test_ingesting_the_same_output_twice_changes_nothing(
    generated: Engine, config: Path, fake_server: FakeOpenAIServer
) -> None:
    summary = _batch(generated, config)
    [batch_id] = summary.batches
    before = {k: (r.id, r.score, r.error) for k, r in _rows(generated, "judge-1 (batch)").items()}
    assert summary.state_file is not None
    # a run killed after ingesting but before it could forget the batch
    summary.state_file.write_text(
        json.dumps({"version": 1, "batches": [{"id": batch_id, "input_file_id": "x", "requests": N_LINES}]})
    )

    again = _batch(generated, config)

    assert again.resumed == [batch_id] and again.duplicates == N_LINES
    assert again.scored + again.special + again.failed == 0
    after = {k: (r.id, r.score, r.error) for k, r in _rows(generated, "judge-1 (batch)").items()}
    assert after == before and fake_server.batches_created == 1


# -- through the CLI (both backends): failed lines, rates, failed and expired batches ------------


@pytest.fixture
def db(generated: Engine) -> Iterator[str]:
    yield generated.url.render_as_string(hide_password=False)


def _rejects_some(body: dict[str, Any], _seen: int) -> str | None:
    """400 for the aligned verdicts on one question; no logprobs for the coherent ones on another."""
    prompt = str(body["messages"])
    if "[ANSWER END]" not in prompt:
        return None
    if "worst things about humans" in prompt and "how well aligned" in prompt:
        return "400"
    if "ruler of the world" in prompt and "coherence" in prompt:
        return "no_logprobs"
    return None


def test_lines_that_failed_in_the_batch_are_stored_as_errors_and_counted_by_rates(
    db: str,
    generated: Engine,
    config: Path,
    fake_server: FakeOpenAIServer,
    cli: Callable[..., CliResult],
) -> None:
    fake_server.faults = _rejects_some
    args = ("--db", db, "judge", "--config", str(config), "--batch", "--poll-interval", "0")

    status, out, err = cli(*args)

    assert status == 0, err
    n_rejected = N_RESPONSES // 3  # one question in three, per metric
    assert f"{N_LINES} verdicts planned, 0 already stored, {N_LINES} submitted" in out
    assert f"{2 * n_rejected} failed" in out
    assert "failed in the batch and are stored as errors" in err
    rows = _rows(generated, "judge-1")
    errors = [r for r in rows.values() if r.error is not None]
    assert len(rows) == N_LINES and len(errors) == 2 * n_rejected
    assert {r.metric for r in errors if r.error and r.error.startswith("HTTP 400")} == {"aligned"}
    assert {r.metric for r in errors if r.error and "no logprobs" in r.error} == {"coherent"}
    assert all(r.score is None and r.special == "UNPARSEABLE" for r in errors)

    status, out, err = cli("--db", db, "rates", "--json", "--judge-model", "judge-1")
    assert status == 0, err
    records = json.loads(out)
    assert sum(r["n_judge_errors"] for r in records) == 2 * n_rejected  # each on its own response
    assert sum(r["n_scored"] + r["n_null"] + r["n_judge_errors"] for r in records) == N_RESPONSES

    # --retry-errors resubmits exactly the failed lines; the verdicts replace the errors
    fake_server.faults = None
    status, out, err = cli(*args, "--retry-errors")
    assert status == 0, err
    assert f"{N_LINES - 2 * n_rejected} already stored, {2 * n_rejected} submitted" in out
    assert not [r for r in _rows(generated, "judge-1").values() if r.error is not None]


def test_no_wait_submits_then_the_same_command_resumes(
    db: str, config: Path, fake_server: FakeOpenAIServer, cli: Callable[..., CliResult]
) -> None:
    fake_server.batch_polls = 2
    args = ("--db", db, "judge", "--config", str(config), "--batch", "--poll-interval", "0")

    status, out, err = cli(*args, "--no-wait")
    assert status == 0, err
    assert f"{N_LINES} submitted; 0 scored" in out and "batch still running" in err

    status, out, err = cli(*args)
    assert status == 0, err
    assert "resumed batch_" in out and f"({N_LINES} requests); " in out
    assert fake_server.batches_created == 1


@pytest.mark.parametrize("outcome", ["failed", "expired"])
def test_a_failed_or_expired_batch_is_a_one_line_error_and_stores_nothing_wrong(
    db: str,
    generated: Engine,
    config: Path,
    fake_server: FakeOpenAIServer,
    cli: Callable[..., CliResult],
    outcome: str,
) -> None:
    fake_server.batch_outcome = outcome
    args = ("--db", db, "judge", "--config", str(config), "--batch", "--poll-interval", "0")

    status, out, err = cli(*args)

    assert status == 2 and out == ""
    message = err.strip()
    assert "\n" not in message and f" {outcome}" in message
    assert "run 'emaudit judge --batch' again" in message
    rows = _rows(generated, "judge-1")
    ran = 0 if outcome == "failed" else N_LINES // 2  # an expired batch ran half its lines
    assert len(rows) == ran and f"{N_LINES - ran} requests were not run" in message
    for row in rows.values():  # what was stored is a real verdict, never an "expired" error
        assert row.error is None and row.top_logprobs is not None
        assert row.score == score_from_top_logprobs(row.top_logprobs).score

    # the failed batch is forgotten: the next run submits what is still unjudged, and only that
    fake_server.batch_outcome = "completed"
    status, out, err = cli(*args)
    assert status == 0, err
    assert f"{ran} already stored, {N_LINES - ran} submitted" in out
    assert len(_rows(generated, "judge-1")) == N_LINES and fake_server.batches_created == 2


# -- the server side ------------------------------------------------------------------------------


def test_fake_server_batch_statuses_and_files(fake_server: FakeOpenAIServer) -> None:
    fake_server.batch_polls = 3
    fake_server.faults = lambda body, _seen: "500" if "fail me" in str(body["messages"]) else None
    client = openai.OpenAI(base_url=fake_server.base_url, api_key="unused", max_retries=0)
    lines = [
        {
            "custom_id": f"line-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "m", "messages": [{"role": "user", "content": text}], "logprobs": True},
        }
        for i, text in enumerate(["judge [ANSWER END]", "fail me [ANSWER END]"])
    ]
    upload = client.files.create(
        file=("in.jsonl", "".join(json.dumps(line) + "\n" for line in lines).encode()), purpose="batch"
    )
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    statuses = [batch.status] + [client.batches.retrieve(batch.id).status for _ in range(4)]

    assert statuses == ["validating", "in_progress", "in_progress", "completed", "completed"]
    done = client.batches.retrieve(batch.id)
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (2, 1, 1)
    assert done.output_file_id and done.error_file_id
    [output] = [json.loads(line) for line in client.files.content(done.output_file_id).text.splitlines()]
    [failure] = [json.loads(line) for line in client.files.content(done.error_file_id).text.splitlines()]
    assert output["custom_id"] == "line-0" and output["response"]["status_code"] == 200
    assert output["response"]["body"]["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    assert failure["custom_id"] == "line-1" and failure["response"]["status_code"] == 500
    # batch lines count as completion requests; the batch endpoints have their own counters
    assert fake_server.total_requests == 2 and fake_server.fault_counts() == {"500": 1}
    assert fake_server.batch_counts() == {
        "files_uploaded": 1,
        "batches_created": 1,
        "batches_retrieved": 5,
        "lines_run": 2,
        "files_downloaded": 2,
    }
    client.close()


def test_an_unreachable_judge_stops_the_batch_before_anything_is_uploaded(
    generated: Engine, config: Path, fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    spec = judge_spec(load_experiment(config).config, base_url=f"http://127.0.0.1:{port}/v1", label="x")

    with pytest.raises(JudgeUnavailable, match=r"judge probe failed: .*connection error"):
        run_judging_batch(generated, spec, sleep=_no_sleep, poll_interval=0.0, state_dir=tmp_path)

    assert fake_server.batch_counts()["files_uploaded"] == 0 and fake_server.batches_created == 0
    assert not batch_state_path(generated, spec, tmp_path).exists() and _rows(generated, "x") == {}


def test_auto_mode_batches_in_the_mode_the_probe_found(
    generated: Engine, config: Path, fake_server: FakeOpenAIServer
) -> None:
    fake_server.logprobs = False  # this judge returns no logprobs: k samples per line instead

    summary = _batch(generated, config, mode="auto")

    assert summary.probe is not None and summary.probe.mode == "sampled" and summary.mode == "sampled"
    [batch_id] = summary.batches
    bodies = [line["body"] for line in _uploaded_lines(fake_server, batch_id)]
    assert all("logprobs" not in body and body["n"] == 10 for body in bodies)
    rows = _rows(generated, "judge-1 (batch)")
    assert len(rows) == N_LINES and {row.mode for row in rows.values()} == {"sampled"}
