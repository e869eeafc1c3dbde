"""Judging through the OpenAI Batch API: the same verdicts as the online judge, at half the price.

Flow: the unjudged (response, metric) pairs of :func:`emaudit.judge.judging.run_judging_async`
become JSONL request lines (the very chat request the online judge sends) → upload
(``purpose="batch"``) → ``batches.create`` → poll → download the output and error files → each
line goes through the online judge's scoring (``score_from_top_logprobs`` or
``parse_sampled_answer``) into ``JudgeScore`` rows. A line that failed is stored with its error,
as online; a line the batch never ran (``batch_expired``) is not stored, so the next run submits
it again. Each verdict keeps the online judge's provenance: requested and reported model, the
hash of the exact prompt sent, mode and parameters.

Before submitting, the judge is probed with one online request to the same endpoint (as online
judging does; it costs one request at the online price): a batch takes up to a day, and a wrong
key, a model without logprobs or a reasoning model that rejects ``max_tokens`` should stop the
run before anything is uploaded, not show up in the output file. ``auto`` becomes the mode the
probe found. A resumed batch is not probed.

Resuming: each uploaded input file is written to a small JSON *state file* in
``EMAUDIT_DATA_DIR/batches/`` (named by a hash of database, judge endpoint and judge label) before
its batch is created, and the batch id right after. The next run with the same database and judge
finds it and polls those batches instead of submitting again; an entry that has a file but no batch
id (the run was killed between the two writes) is matched to the batch created from that file, by
listing the account's batches, and the batch is created only if there is none, so a kill never
pays for one batch twice; the state file is deleted once every batch is ingested or has failed.
Ingesting is idempotent (insert-or-ignore on the JudgeScore unique key), so a run killed half-way
through ingesting simply ingests again. Each request line's ``custom_id`` is
``em:<response id>:<metric>:<prompt sha256>``, so an output file can be read without any local state.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from sqlalchemy import Engine, update
from sqlmodel import col, select

from emaudit.errors import EmauditError
from emaudit.models import JudgeScore, utcnow
from emaudit.store import write_session

from .client import ChatClient, _describe, _Retryable
from .judging import (
    JudgeSpec,
    JudgeSummary,
    Sleep,
    _check_metrics,
    _Job,
    _pending,
    _request_hashes,
    probe_judge,
    request_hash,
    resolve_mode,
    verdict_values,
)
from .scoring import Verdict, score_from_samples, score_from_top_logprobs

if TYPE_CHECKING:
    import openai
    from openai.types import Batch

__all__ = [
    "BATCH_ENDPOINT",
    "BatchJudgeSummary",
    "batch_state_path",
    "run_judging_batch",
    "run_judging_batch_async",
]

BATCH_ENDPOINT: Final[Literal["/v1/chat/completions"]] = "/v1/chat/completions"
MAX_BATCH_REQUESTS = 50_000
"""OpenAI's limit on requests per batch; larger runs are split into several batches."""
_MAX_BATCH_BYTES = 190_000_000  # OpenAI's input-file limit is 200 MB; keep a margin
_TERMINAL = ("completed", "failed", "expired", "cancelled")
_STATE_VERSION = 1
_INGEST_CHUNK = 500


@dataclass
class BatchJudgeSummary(JudgeSummary):
    """What a batch judging run did.

    Attributes (besides :class:`~emaudit.judge.judging.JudgeSummary`'s, which count the rows
    stored by this run):
        submitted: Request lines submitted in new batches by this run.
        resumed: Ids of batches submitted by an earlier run that this run polled.
        batches: Batch id -> last status seen.
        duplicates: Lines whose verdict was already stored (a repeated ingest); ignored.
        not_run: Lines the batch never ran (it expired or was cancelled); left unjudged.
        state_file: Where the batch ids are kept until every batch is ingested.
    """

    submitted: int = 0
    resumed: list[str] = field(default_factory=list)
    batches: dict[str, str] = field(default_factory=dict)
    duplicates: int = 0
    not_run: int = 0
    state_file: Path | None = None

    @property
    def pending(self) -> bool:
        """True when a batch is still running (the state file stays for the next run)."""
        return any(status not in _TERMINAL for status in self.batches.values())


def batch_state_path(engine: Engine, spec: JudgeSpec, state_dir: Path | None = None) -> Path:
    """The state file that remembers this judge's submitted batches for this database.

    Args:
        engine: The store (its URL, without password, is part of the key: one data dir may
            serve several databases).
        spec: The judge (endpoint and stored label are part of the key).
        state_dir: Directory of state files (default ``EMAUDIT_DATA_DIR/batches``).
    """
    if state_dir is None:
        from emaudit.settings import get_settings

        state_dir = Path(get_settings().data_dir) / "batches"
    url = engine.url
    database = (
        str(Path(url.database).resolve())
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:"
        else url.render_as_string(hide_password=True)
    )
    identity = json.dumps([database, spec.base_url.rstrip("/"), spec.judge_model])
    return state_dir / f"judge-{hashlib.sha256(identity.encode()).hexdigest()[:16]}.json"


# -- request lines ----------------------------------------------------------------------------


def _custom_id(job: _Job) -> str:
    return f"em:{job.response_id}:{job.metric}:{job.template_hash}"


def _parse_custom_id(custom_id: object) -> tuple[int, str, str] | None:
    """(response id, metric, prompt hash), or None for a line this program did not write."""
    if not isinstance(custom_id, str) or not custom_id.startswith("em:"):
        return None
    head, _, template_hash = custom_id[3:].rpartition(":")
    response_id, _, metric = head.partition(":")
    if not response_id.isdigit() or not metric or len(template_hash) != 64:
        return None
    return int(response_id), metric, template_hash


def _request_lines(spec: JudgeSpec, jobs: Sequence[_Job]) -> Iterator[bytes]:
    params = spec.params
    for job in jobs:
        body = {"model": spec.model, "messages": [{"role": "user", "content": job.prompt}], **params}
        line = {"custom_id": _custom_id(job), "method": "POST", "url": BATCH_ENDPOINT, "body": body}
        yield (json.dumps(line, ensure_ascii=False) + "\n").encode()


def _split(lines: Iterable[bytes], max_requests: int) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        if chunk and (len(chunk) >= max_requests or size + len(line) > _MAX_BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    if chunk:
        yield chunk


# -- state file -------------------------------------------------------------------------------


def _load_state(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
        if state.get("version") != _STATE_VERSION or not isinstance(state.get("batches"), list):
            raise ValueError("unknown layout")
    except ValueError as error:
        raise EmauditError(
            f"{path}: unreadable batch state ({error}); delete it to submit again "
            "(batches it names may still be running on the API)"
        ) from None
    return dict(state)


def _save_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.tmp")
    partial.write_text(json.dumps(state, indent=2))
    partial.replace(path)  # atomic: a kill never leaves half a state file


# -- reading result lines ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    response_id: int
    metric: str
    template_hash: str
    verdict: Verdict | None
    failure: str | None
    tokens: int = 0
    reported_model: str | None = None


def _outcome(record: dict[str, Any], key: tuple[int, str, str], logprobs: bool) -> _Outcome | None:
    """One result line -> a verdict or a failure (None: the batch never ran it)."""
    from openai.types.chat import ChatCompletion

    error = record.get("error")
    response = record.get("response") or {}
    if error:
        if error.get("code") == "batch_expired":
            return None
        return _Outcome(*key, None, f"{error.get('code')}: {error.get('message')}")
    status = response.get("status_code")
    body = response.get("body")
    if status != 200 or not isinstance(body, dict):
        message = (body or {}).get("error", {}).get("message") if isinstance(body, dict) else body
        return _Outcome(*key, None, f"HTTP {status}: {message}")
    try:
        result = ChatClient._result(
            ChatCompletion.model_validate(body), time.perf_counter(), 1, want_logprobs=logprobs
        )
    except _Retryable as failure:  # online this would be retried; a batch line is final
        return _Outcome(*key, None, str(failure))
    except ValueError as failure:
        return _Outcome(*key, None, _describe(failure))
    tokens = (result.prompt_tokens or 0) + (result.completion_tokens or 0)
    if logprobs:
        assert result.top_logprobs is not None
        return _Outcome(*key, score_from_top_logprobs(result.top_logprobs), None, tokens, result.model)
    return _Outcome(*key, score_from_samples(result.texts or (result.text,)), None, tokens, result.model)


def _store_outcomes(
    engine: Engine,
    spec: JudgeSpec,
    outcomes: list[_Outcome],
    summary: BatchJudgeSummary,
    hashes: dict[tuple[int, str, str], str],
) -> None:
    """Insert-or-ignore on (response, judge model, metric, prompt hash); a stored error may be
    replaced by a verdict (``--retry-errors`` batches), a stored verdict never is. ``hashes``
    gives each line's request hash (provenance, as online)."""
    judge_model = spec.judge_model
    for start in range(0, len(outcomes), _INGEST_CHUNK):
        chunk = outcomes[start : start + _INGEST_CHUNK]
        with write_session(engine) as session:
            existing = {
                (rid, metric, phash): error is not None
                for rid, metric, phash, error in session.exec(
                    select(
                        JudgeScore.response_id, JudgeScore.metric, JudgeScore.prompt_hash, JudgeScore.error
                    )
                    .where(JudgeScore.judge_model == judge_model)
                    .where(col(JudgeScore.response_id).in_({o.response_id for o in chunk}))
                )
            }
            inserts: list[dict[str, Any]] = []
            for outcome in chunk:
                key = (outcome.response_id, outcome.metric, outcome.template_hash)
                values = verdict_values(
                    spec, outcome.verdict, outcome.failure, outcome.reported_model, hashes.get(key)
                )
                had_error = existing.get(key)
                if had_error is None:
                    inserts.append(
                        {
                            "response_id": key[0],
                            "judge_model": judge_model,
                            "metric": key[1],
                            "prompt_hash": key[2],
                            "created_at": utcnow(),
                            **values,
                        }
                    )
                    existing[key] = outcome.failure is not None
                elif had_error and outcome.failure is None:
                    session.execute(
                        update(JudgeScore)
                        .where(
                            col(JudgeScore.response_id) == key[0],
                            col(JudgeScore.judge_model) == judge_model,
                            col(JudgeScore.metric) == key[1],
                            col(JudgeScore.prompt_hash) == key[2],
                        )
                        .values(**values)
                    )
                    existing[key] = False
                else:
                    summary.duplicates += 1
                    continue
                _count(summary, outcome)
            if inserts:
                session.execute(_insert_ignore(engine), inserts)


def _insert_ignore(engine: Engine) -> Any:
    table: Any = JudgeScore.__table__  # type: ignore[attr-defined]
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(
            index_elements=["response_id", "judge_model", "metric", "prompt_hash"]
        )
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing(
        index_elements=["response_id", "judge_model", "metric", "prompt_hash"]
    )


def _count(summary: BatchJudgeSummary, outcome: _Outcome) -> None:
    summary.tokens += outcome.tokens
    if outcome.failure is not None:
        summary.failed += 1
        if len(summary.errors) < 20:
            summary.errors.append(outcome.failure)
    elif outcome.verdict is not None and outcome.verdict.score is None:
        summary.special += 1
    else:
        summary.scored += 1


# -- talking to the API -----------------------------------------------------------------------


def _client(spec: JudgeSpec) -> openai.AsyncOpenAI:
    import openai

    key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
    # The SDK's own retries are fine for these few idempotent calls (retrieve, download);
    # batches.create turns them off, so a timed-out create can never start two batches.
    return openai.AsyncOpenAI(
        base_url=spec.base_url,
        api_key=key or "no-key",
        max_retries=max(0, spec.retry.max_attempts - 1),
        timeout=spec.retry.timeout,
    )


@contextmanager
def _api_errors(spec: JudgeSpec, doing: str) -> Iterator[None]:
    import openai

    try:
        yield
    except (openai.APIError, ValueError) as error:
        raise EmauditError(
            f"--batch: {doing} at {spec.base_url} failed ({_describe(error)}); "
            "does this endpoint support the OpenAI Batch API? Run without --batch to judge online"
        ) from None


async def _submit(
    client: openai.AsyncOpenAI,
    spec: JudgeSpec,
    lines: list[bytes],
    state: dict[str, Any],
    path: Path,
) -> str:
    with _api_errors(spec, "uploading the batch input file"):
        uploaded = await client.files.create(file=("emaudit-judge.jsonl", b"".join(lines)), purpose="batch")
    entry: dict[str, Any] = {"id": None, "input_file_id": uploaded.id, "requests": len(lines)}
    state["batches"].append(entry)
    _save_state(path, state)  # before creating: a kill in between leaves the file to find its batch by
    return await _create(client, spec, entry, state, path)


async def _create(
    client: openai.AsyncOpenAI, spec: JudgeSpec, entry: dict[str, Any], state: dict[str, Any], path: Path
) -> str:
    with _api_errors(spec, "creating the batch"):
        batch = await client.with_options(max_retries=0).batches.create(
            input_file_id=entry["input_file_id"],
            endpoint=BATCH_ENDPOINT,
            completion_window="24h",
            metadata={"emaudit_judge": spec.judge_model[:512]},
        )
    entry["id"] = batch.id
    _save_state(path, state)  # at once: a kill right after creating must not lose the id
    return str(batch.id)


async def _recover_unnamed(
    client: openai.AsyncOpenAI, spec: JudgeSpec, state: dict[str, Any], path: Path
) -> None:
    """Give every state entry without a batch id the batch made from its file, or create that batch.

    The account's batches are listed newest first, back to the state's submission time (the list
    can hold months of other work).
    """
    unnamed = {e["input_file_id"]: e for e in state["batches"] if not e.get("id")}
    if not unnamed:
        return
    submitted_at = state.get("submitted_at")
    since = datetime.fromisoformat(submitted_at).timestamp() - 3600 if submitted_at else 0  # clock skew
    with _api_errors(spec, "listing batches"):
        async for batch in client.batches.list(limit=100):
            if batch.input_file_id in unnamed:
                unnamed.pop(batch.input_file_id)["id"] = batch.id
            if not unnamed or batch.created_at < since:
                break
    _save_state(path, state)
    for entry in unnamed.values():
        await _create(client, spec, entry, state, path)


async def _download(client: openai.AsyncOpenAI, spec: JudgeSpec, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    with _api_errors(spec, f"downloading file {file_id}"):
        content = await client.files.content(file_id)
    records = []
    for number, line in enumerate(content.text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise EmauditError(
                f"--batch: file {file_id} line {number} is not JSON; nothing from it was stored"
            ) from None
        if isinstance(record, dict):
            records.append(record)
    return records


async def _ingest(
    engine: Engine,
    client: openai.AsyncOpenAI,
    spec: JudgeSpec,
    batch: Batch,
    mode: str,
    summary: BatchJudgeSummary,
) -> None:
    """Store every result line of a finished batch; submitted lines with no result are errors
    when the batch completed (never silently dropped), and left unjudged when it expired."""
    records = await _download(client, spec, batch.output_file_id)
    records += await _download(client, spec, batch.error_file_id)
    logprobs = mode == "logprobs"
    outcomes: list[_Outcome] = []
    seen: set[tuple[int, str, str]] = set()
    for record in records:
        key = _parse_custom_id(record.get("custom_id"))
        if key is None or key in seen:
            continue
        seen.add(key)
        outcome = _outcome(record, key, logprobs)
        if outcome is None:
            summary.not_run += 1
        else:
            outcomes.append(outcome)
    total = batch.request_counts.total if batch.request_counts else None
    if batch.status == "completed" and len(seen) != total:
        # only then read the (large) input file back, to name the lines that have no result
        for key in await _submitted_keys(client, spec, batch.input_file_id):
            if key not in seen:
                outcomes.append(_Outcome(*key, None, f"missing from the output of batch {batch.id}"))
    else:
        summary.not_run += max(0, (total or 0) - len(seen))
    keys = [(o.response_id, o.metric, o.template_hash) for o in outcomes]
    hashes = _request_hashes(engine, spec, keys)
    if len(hashes) < len(keys):
        # the prompt cannot be rebuilt (its rubric changed since submission): hash the one sent
        for record in await _download(client, spec, batch.input_file_id):
            key = _parse_custom_id(record.get("custom_id"))
            body = record.get("body")
            if key is not None and key not in hashes and isinstance(body, dict):
                hashes[key] = request_hash(body.get("messages") or [])
    _store_outcomes(engine, spec, outcomes, summary, hashes)


async def _submitted_keys(
    client: openai.AsyncOpenAI, spec: JudgeSpec, input_file_id: str
) -> list[tuple[int, str, str]]:
    keys = []
    for record in await _download(client, spec, input_file_id):
        key = _parse_custom_id(record.get("custom_id"))
        if key is not None:
            keys.append(key)
    return keys


def _status_line(batches: dict[str, Batch], polls: int, interval: float) -> str:
    parts = []
    for batch in batches.values():
        counts = batch.request_counts
        done = f" {counts.completed:,}/{counts.total:,} done, {counts.failed:,} failed" if counts else ""
        parts.append(f"{batch.id} {batch.status}{done}")
    return f"batch {'; '.join(parts)} · checked {polls}x, every {interval:g}s (Ctrl-C: resume later)"


def _failure_message(batch: Batch) -> str:
    errors = batch.errors.data if batch.errors and batch.errors.data else []
    reason = f": {errors[0].message}" if errors and errors[0].message else ""
    return f"batch {batch.id} {batch.status}{reason}"


async def run_judging_batch_async(
    engine: Engine,
    spec: JudgeSpec,
    *,
    response_ids: Sequence[int] | None = None,
    retry_errors: bool = False,
    wait: bool = True,
    poll_interval: float = 60.0,
    max_requests_per_batch: int = MAX_BATCH_REQUESTS,
    state_dir: Path | None = None,
    progress: bool = False,
    sleep: Sleep | None = None,
    probe: bool = True,
) -> BatchJudgeSummary:
    """Judge the unjudged responses through the OpenAI Batch API, or resume a submitted batch.

    When the state file (:func:`batch_state_path`) names batches from an earlier run, they are
    polled and ingested and nothing new is submitted; otherwise the pending verdicts (exactly
    those :func:`~emaudit.judge.judging.run_judging_async` would request) are submitted in
    batches of at most ``max_requests_per_batch`` lines. Verdicts are computed as online.

    Args:
        engine: A migrated store.
        spec: The judge (``logprobs`` or ``sampled`` mode).
        response_ids: Only these responses (default: all).
        retry_errors: Also submit the verdicts stored with an error.
        wait: Poll until every batch has finished; False checks once and returns (the state
            file keeps the batch ids for the next run).
        poll_interval: Seconds between checks.
        max_requests_per_batch: Split larger runs (OpenAI allows 50,000 per batch).
        state_dir: Where the state file lives (default ``EMAUDIT_DATA_DIR/batches``).
        progress: Show a status line on stderr while waiting.
        sleep: The wait between checks (tests).
        probe: Before submitting, probe the judge with one online request
            (:mod:`emaudit.judge.probe`, as online judging does): an unreachable or unusable judge
            stops the run before anything is uploaded, and ``auto`` becomes the mode the probe
            found. A resumed batch is not probed (it runs in the mode it was submitted with).

    Raises:
        JudgeUnavailable: the probe found the judge unreachable or unusable; nothing submitted.
        EmauditError: a batch failed, expired or was cancelled (its finished lines are stored,
            the rest stay unjudged for the next run), or the endpoint refused the Batch API.
    """
    if poll_interval < 0:
        raise EmauditError(f"--poll-interval: must be >= 0, got {poll_interval:g}")
    if max_requests_per_batch < 1:
        raise EmauditError(f"max_requests_per_batch: must be >= 1, got {max_requests_per_batch}")
    requested = spec
    # auto: a batch this judge submitted earlier, under either mode's label, is resumed as it
    # was asked; otherwise the probe decides (without a probe: logprobs, which OpenAI's judge
    # models return)
    candidates = [spec] if spec.mode != "auto" else [replace(spec, mode=m) for m in ("logprobs", "sampled")]
    spec = next((c for c in candidates if batch_state_path(engine, c, state_dir).exists()), candidates[0])
    _check_metrics(engine, spec)
    path = batch_state_path(engine, spec, state_dir)
    summary = BatchJudgeSummary(state_file=path, judge_model=spec.judge_model, mode=spec.mode)
    state = _load_state(path)
    client: openai.AsyncOpenAI | None = None
    try:
        if state is not None:
            client = _client(spec)
            await _recover_unnamed(client, spec, state, path)
            summary.resumed = [b["id"] for b in state["batches"] if not b.get("ingested")]
            summary.planned = sum(int(b["requests"]) for b in state["batches"] if not b.get("ingested"))
        else:
            jobs, skipped = _pending(engine, spec, response_ids=response_ids, retry_errors=retry_errors)
            if jobs and probe:
                # one online request before paying for a batch that could not be used (wrong
                # key or URL, no logprobs, a reasoning model that needs other parameters)
                summary.probe = await probe_judge(requested)
                spec = resolve_mode(requested, summary.probe)
                if spec.judge_model != summary.judge_model:  # auto became sampled: its own rows
                    path = batch_state_path(engine, spec, state_dir)
                    jobs, skipped = _pending(
                        engine, spec, response_ids=response_ids, retry_errors=retry_errors
                    )
                summary.state_file, summary.judge_model, summary.mode = path, spec.judge_model, spec.mode
            summary.planned, summary.skipped = len(jobs) + skipped, skipped
            if not jobs:
                return summary
            client = _client(spec)
            state = {
                "version": _STATE_VERSION,
                "judge_model": spec.judge_model,
                "model": spec.model,
                "mode": spec.mode,
                "base_url": spec.base_url,
                "database": engine.url.render_as_string(hide_password=True),
                "submitted_at": utcnow().isoformat(),
                "batches": [],
            }
            for chunk in _split(_request_lines(spec, jobs), max_requests_per_batch):
                await _submit(client, spec, chunk, state, path)
                summary.submitted += len(chunk)
        assert client is not None
        await _poll(engine, client, spec, state, path, summary, wait, poll_interval, progress, sleep)
    finally:
        if client is not None:
            await client.close()
    return summary


async def _poll(
    engine: Engine,
    client: openai.AsyncOpenAI,
    spec: JudgeSpec,
    state: dict[str, Any],
    path: Path,
    summary: BatchJudgeSummary,
    wait: bool,
    interval: float,
    progress: bool,
    sleep: Sleep | None,
) -> None:
    from emaudit.console import err_console

    seen: dict[str, Batch] = {}
    failures: list[str] = []
    polls = 0
    status = err_console.status("batch: submitted") if progress else None
    if status is not None:
        status.start()
    try:
        while True:
            polls += 1
            for entry in state["batches"]:
                if entry.get("ingested"):
                    continue
                with _api_errors(spec, f"checking batch {entry['id']}"):
                    batch = await client.batches.retrieve(entry["id"])
                seen[batch.id] = batch
                summary.batches[batch.id] = batch.status
                if batch.status in _TERMINAL:
                    # parse as the batch was asked (a resumed run may name another mode)
                    mode = str(state.get("mode") or spec.mode)
                    await _ingest(engine, client, spec, batch, mode, summary)
                    if batch.status != "completed":
                        failures.append(_failure_message(batch))
                    entry["ingested"] = True
                    entry["status"] = batch.status
                    _save_state(path, state)
            if status is not None:
                status.update(_status_line(seen, polls, interval))
            if all(entry.get("ingested") for entry in state["batches"]):
                path.unlink(missing_ok=True)  # done: the next run submits whatever is new
                break
            if not wait:
                break
            await (sleep or asyncio.sleep)(interval)
    finally:
        if status is not None:
            status.stop()
    if failures:
        stored = summary.scored + summary.special + summary.failed
        raise EmauditError(
            f"--batch: {'; '.join(failures)}; stored {stored} verdicts, {summary.not_run} requests "
            "were not run and stay unjudged; run 'emaudit judge --batch' again to submit them"
        )


def run_judging_batch(engine: Engine, spec: JudgeSpec, **kwargs: Any) -> BatchJudgeSummary:
    """Synchronous :func:`run_judging_batch_async` (same arguments)."""
    return asyncio.run(run_judging_batch_async(engine, spec, **kwargs))
