"""Generation: config → cells × questions × samples → prompts → async calls → Response rows.

DESIGN §4 flow 1. Every response is committed as soon as it arrives (group commit: the answers
that arrive while one transaction runs share the next, written off the event loop by
:class:`emaudit.judge._writer.BatchWriter`; a worker moves on only once its answer is
committed), and a re-run first reads which (condition, question, sample) keys are stored, so
killing a run loses at most the requests in flight and resuming never repeats a stored one.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, insert, update
from sqlmodel import Session, col, select

from emaudit import __version__
from emaudit.models import Condition, Question, Response, condition_key, table_of, utcnow
from emaudit.questions import QuestionSpec, import_questions
from emaudit.store import is_sqlite, write_session

from ._progress import RunProgress
from ._writer import BatchWriter
from .client import ChatClient, ChatResult, RateLimiter, RequestFailed, RetryPolicy, estimate_tokens
from .config import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, EndpointConfig, Experiment
from .prompts import build_messages, sample_examples

__all__ = [
    "Cell",
    "GenerationSummary",
    "PromptPlan",
    "expand_cells",
    "plan_prompts",
    "run_generation",
    "run_generation_async",
]

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Cell:
    """One experimental condition (a future ``Condition`` row).

    A zero-shot cell (``n_shots == 0``) is the no-context baseline: it has no domain, seed or
    prompt format, so each endpoint has one baseline however many domains the config lists.
    """

    endpoint: EndpointConfig
    domain: str | None
    n_shots: int
    seed: int | None
    instruction: str
    reasoning: bool
    prompt_format: str | None
    extra: tuple[tuple[str, Any], ...] = ()

    def fields(self) -> dict[str, Any]:
        """The ``Condition`` columns of this cell."""
        return {
            "model": self.endpoint.model,
            "endpoint": self.endpoint.name,
            "domain": self.domain,
            "n_shots": self.n_shots,
            "seed": self.seed,
            "instruction": self.instruction,
            "reasoning": self.reasoning,
            "prompt_format": self.prompt_format,
            "extra": dict(self.extra) or None,
        }

    @property
    def key(self) -> str:
        """``Condition.key`` (see :func:`emaudit.models.condition_key`)."""
        return condition_key(self.fields())


@dataclass(frozen=True)
class PromptPlan:
    """The prompt of one (cell, question, paraphrase), to be sampled ``samples`` times.

    ``sample_indices`` are the stored ``Response.sample_index`` values (default ``0..samples-1``;
    with several paraphrases each paraphrase owns some of them).
    """

    cell: Cell
    question: QuestionSpec
    messages: list[dict[str, Any]]
    samples: int
    sample_indices: tuple[int, ...] | None = None
    paraphrase: str | None = None

    def indices(self) -> tuple[int, ...]:
        """The sample indices this plan fills."""
        return self.sample_indices if self.sample_indices is not None else tuple(range(self.samples))


def _paraphrase_samples(cell: Cell, question: QuestionSpec, samples: int, mode: str) -> dict[str, list[int]]:
    """Paraphrase -> the sample indices asked with it.

    ``first``: every sample asks the first paraphrase. ``sample``: each sample draws one at
    random with replacement, as Betley et al. (2025) do (``random.choices(paraphrases, k=n)``),
    seeded by (cell, question, sample) so a resumed run asks the same. ``all``: every paraphrase
    gets ``samples`` samples, numbered paraphrase by paraphrase.
    """
    paraphrases = question.paraphrases or [question.text]
    if mode == "all":
        return {p: list(range(i * samples, (i + 1) * samples)) for i, p in enumerate(paraphrases)}
    if mode == "sample":
        chosen: dict[str, list[int]] = {}
        for index in range(samples):
            pick = random.Random(f"{cell.key}|{question.key}|{index}").choice(paraphrases)
            chosen.setdefault(pick, []).append(index)
        return chosen
    return {question.text: list(range(samples))}


def _extra(experiment: Experiment, endpoint: EndpointConfig) -> tuple[tuple[str, Any], ...]:
    # Sampling settings that differ from the paper's defaults are part of the cell: changing the
    # temperature must start new conditions, not silently mix answers into old ones.
    generation = experiment.config.generation
    extra: dict[str, Any] = {}
    if generation.temperature != DEFAULT_TEMPERATURE:
        extra["temperature"] = generation.temperature
    if generation.max_tokens != DEFAULT_MAX_TOKENS:
        extra["max_tokens"] = generation.max_tokens
    params = generation.params | endpoint.params
    if params:
        extra["params"] = params
    if experiment.config.paraphrases != "first":
        extra["paraphrases"] = experiment.config.paraphrases
    return tuple(sorted(extra.items()))


def expand_cells(experiment: Experiment) -> list[Cell]:
    """Every cell of the config's cross product, without duplicates, in config order."""
    config = experiment.config
    cells: dict[str, Cell] = {}
    for endpoint in config.endpoints:
        extra = _extra(experiment, endpoint)
        for shots in config.n_shots:
            domains: list[str | None] = list(config.domains) if shots > 0 else [None]
            for domain in domains:
                for seed in config.seeds if shots > 0 else [None]:
                    for instruction in config.instructions:
                        for reasoning in config.reasoning:
                            for prompt_format in config.prompt_formats if shots > 0 else [None]:
                                cell = Cell(
                                    endpoint,
                                    domain,
                                    shots,
                                    seed,
                                    instruction,
                                    reasoning,
                                    prompt_format,
                                    extra,
                                )
                                cells.setdefault(cell.key, cell)
    return list(cells.values())


def _questions_for(experiment: Experiment, domain: str | None) -> list[QuestionSpec]:
    if domain is None:
        return list(experiment.questions)
    rule = experiment.config.domains[domain]
    excluded_categories, excluded_ids = set(rule.exclude_categories), set(rule.exclude_questions)
    return [
        q for q in experiment.questions if q.category not in excluded_categories and q.key not in excluded_ids
    ]


def plan_prompts(experiment: Experiment) -> list[PromptPlan]:
    """The exact messages of every (cell, question), built by :mod:`emaudit.judge.prompts`."""
    plans: list[PromptPlan] = []
    samples = experiment.config.samples_per_question
    for cell in expand_cells(experiment):
        examples = (
            sample_examples(
                experiment.examples[cell.domain], cell.n_shots, seed=cell.seed or 0, domain=cell.domain
            )
            if cell.domain is not None
            else []
        )
        for question in _questions_for(experiment, cell.domain):
            asked = _paraphrase_samples(cell, question, samples, experiment.config.paraphrases)
            for paraphrase, indices in asked.items():
                messages = build_messages(
                    paraphrase,
                    examples,
                    prompt_format=cell.prompt_format or "single-block",
                    system_prompt=question.system_prompt,
                    instruction=cell.instruction,
                )
                plans.append(PromptPlan(cell, question, messages, len(indices), tuple(indices), paraphrase))
    return plans


def _request_params(experiment: Experiment, cell: Cell) -> dict[str, Any]:
    generation = experiment.config.generation
    params: dict[str, Any] = {
        "temperature": generation.temperature,
        generation.max_tokens_param: generation.max_tokens,
    }
    params |= generation.params | cell.endpoint.params
    if cell.reasoning:
        params |= cell.endpoint.reasoning_params
    return params


@dataclass
class GenerationSummary:
    """What a generation run did.

    Attributes:
        planned: Responses the config asks for.
        skipped: Already stored before this run (never requested again).
        completed: Stored with text in this run.
        failed: Stored with an error in this run.
        prompt_tokens / completion_tokens: Spent in this run (from the API's usage).
        estimated_prompt_tokens / max_completion_tokens: For ``--dry-run``: the prompt tokens
            still to send (4 characters per token) and the completion-token ceiling.
    """

    planned: int = 0
    skipped: int = 0
    completed: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated_prompt_tokens: int = 0
    max_completion_tokens: int = 0
    conditions: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def to_request(self) -> int:
        """Responses not yet stored."""
        return self.planned - self.skipped


def _condition_config(experiment: Experiment) -> dict[str, Any]:
    return {
        "experiment": experiment.config.model_dump(mode="json"),
        "config_file": str(experiment.config_path) if experiment.config_path else None,
        "overrides": experiment.overrides,
        "question_set": experiment.question_set,
        "emaudit_version": __version__,
    }


def _ensure_conditions(engine: Engine, experiment: Experiment, cells: Iterable[Cell]) -> dict[str, int]:
    """Condition ids by key, creating the missing rows (an existing row keeps its first config)."""
    wanted = {cell.key: cell for cell in cells}
    with write_session(engine) as session:
        existing = {
            c.key: c for c in session.exec(select(Condition).where(col(Condition.key).in_(list(wanted))))
        }
        for key, cell in wanted.items():
            if key not in existing:
                condition = Condition(key=key, config=_condition_config(experiment), **cell.fields())
                session.add(condition)
                existing[key] = condition
        session.flush()
        return {key: int(condition.id) for key, condition in existing.items() if condition.id is not None}


def _lookup_conditions(engine: Engine, keys: list[str]) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.exec(select(Condition.key, Condition.id).where(col(Condition.key).in_(keys)))
        return {key: int(cid) for key, cid in rows if cid is not None}


def _lookup_questions(engine: Engine, question_set: str) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.exec(select(Question.key, Question.id).where(Question.question_set == question_set))
        return {key: int(qid) for key, qid in rows if qid is not None}


def _stored(engine: Engine, condition_ids: Iterable[int]) -> dict[tuple[int, int, int], bool]:
    """(condition, question, sample) -> whether the stored row is an error, for these conditions."""
    ids = list(condition_ids)
    stored: dict[tuple[int, int, int], bool] = {}
    with Session(engine) as session:
        for start in range(0, len(ids), 500):
            query = select(
                Response.condition_id, Response.question_id, Response.sample_index, Response.error
            ).where(col(Response.condition_id).in_(ids[start : start + 500]))
            for condition_id, question_id, sample_index, error in session.exec(query):
                stored[(condition_id, question_id, sample_index)] = error is not None
    return stored


@dataclass(frozen=True)
class _Job:
    plan: PromptPlan
    condition_id: int
    question_id: int
    sample_index: int
    replace_error: bool
    params: dict[str, Any]
    token_estimate: int


_Stored = tuple[_Job, ChatResult | None, RequestFailed | None]


def _response_values(job: _Job, result: ChatResult | None, failure: RequestFailed | None) -> dict[str, Any]:
    return {
        "messages": job.plan.messages,
        "text": result.text if result else None,
        "reasoning": result.reasoning if result else None,
        "finish_reason": result.finish_reason if result else None,
        "prompt_tokens": result.prompt_tokens if result else None,
        "completion_tokens": result.completion_tokens if result else None,
        "latency_ms": result.latency_ms if result else None,
        "attempts": result.attempts if result else (failure.attempts if failure else 0),
        "error": failure.message if failure else None,
        "source": "emaudit generate",
    }


def _store_responses(
    engine: Engine, batch: list[tuple[_Job, ChatResult | None, RequestFailed | None]]
) -> None:
    """Write one batch of answers in one transaction (Core statements: no ORM unit of work)."""
    table = table_of(Response)
    inserts: list[dict[str, Any]] = []
    with write_session(engine) as session:
        for job, result, failure in batch:
            values = _response_values(job, result, failure)
            if job.replace_error:
                session.execute(
                    update(table)
                    .where(
                        table.c.condition_id == job.condition_id,
                        table.c.question_id == job.question_id,
                        table.c.sample_index == job.sample_index,
                    )
                    .values(**values)
                )
            else:
                inserts.append(
                    {
                        "condition_id": job.condition_id,
                        "question_id": job.question_id,
                        "sample_index": job.sample_index,
                        "created_at": utcnow(),
                        **values,
                    }
                )
        if inserts:
            session.execute(insert(table), inserts)


async def run_workers(jobs: list[Any], worker: Callable[[Any], Awaitable[None]], concurrency: int) -> None:
    """Run ``worker`` over ``jobs`` with at most ``concurrency`` in flight.

    A fixed pool of tasks pulls from a queue (instead of one task per job) so a run of millions
    of requests keeps memory flat; cancelling (Ctrl-C) cancels the in-flight ones only.
    """
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def loop() -> None:
        while True:
            try:
                job = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await worker(job)

    tasks = [asyncio.create_task(loop()) for _ in range(max(1, min(concurrency, len(jobs))))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_generation_async(
    engine: Engine,
    experiment: Experiment,
    *,
    concurrency: int | None = None,
    dry_run: bool = False,
    retry_errors: bool = False,
    progress: bool = False,
    sleep: Sleep | None = None,
    rng: random.Random | None = None,
) -> GenerationSummary:
    """Generate every response the experiment asks for that is not stored yet.

    Args:
        engine: A migrated store.
        experiment: From :func:`emaudit.judge.load_experiment`.
        concurrency: Requests in flight (default: the config's ``concurrency``).
        dry_run: Count requests and estimate tokens; write nothing, request nothing.
        retry_errors: Request again the responses stored with an error (their rows are updated).
        progress: Show a rich progress bar on stderr.
        sleep: Backoff sleep (tests pass a fast one).
        rng: Jitter source.

    Returns:
        A :class:`GenerationSummary`.
    """
    config = experiment.config
    plans = plan_prompts(experiment)
    cells = list({plan.cell.key: plan.cell for plan in plans}.values())
    summary = GenerationSummary(planned=sum(plan.samples for plan in plans), conditions=len(cells))
    if dry_run:
        condition_ids = _lookup_conditions(engine, [cell.key for cell in cells])
        question_ids = _lookup_questions(engine, experiment.question_set)
    else:
        import_questions(engine, experiment.question_path, experiment.question_set)
        question_ids = _lookup_questions(engine, experiment.question_set)
        condition_ids = _ensure_conditions(engine, experiment, cells)
    stored = _stored(engine, condition_ids.values())
    jobs: list[_Job] = []
    for plan in plans:
        condition_id = condition_ids.get(plan.cell.key, -1)
        question_id = question_ids.get(plan.question.key, -1)
        params = _request_params(experiment, plan.cell)
        estimate = estimate_tokens(plan.messages)
        for sample_index in plan.indices():
            state = stored.get((condition_id, question_id, sample_index))
            if state is not None and not (retry_errors and state):
                summary.skipped += 1
                continue
            jobs.append(
                _Job(plan, condition_id, question_id, sample_index, state is not None, params, estimate)
            )
    summary.estimated_prompt_tokens = sum(job.token_estimate for job in jobs)
    summary.max_completion_tokens = len(jobs) * config.generation.max_tokens
    if dry_run or not jobs:
        return summary

    policy = RetryPolicy(**config.retry.model_dump())
    rng = rng or random.Random()
    with RunProgress("generate", len(jobs), enabled=progress) as bar:
        clients = {
            endpoint.name: ChatClient(
                endpoint.base_url,
                endpoint.api_key_env,
                policy,
                RateLimiter(endpoint.rpm, endpoint.tpm),
                rng,
                on_retry=bar.retried,
            )
            for endpoint in config.endpoints
        }

        async def work(job: _Job, writer: BatchWriter[_Stored]) -> None:
            client = clients[job.plan.cell.endpoint.name]
            result: ChatResult | None = None
            failure: RequestFailed | None = None
            try:
                result = await client.complete(
                    model=job.plan.cell.endpoint.model,
                    messages=job.plan.messages,
                    params=job.params,
                    token_estimate=job.token_estimate + config.generation.max_tokens,
                    sleep=sleep,
                )
            except RequestFailed as error:
                failure = error
            await writer.put((job, result, failure))
            if failure is not None:
                summary.failed += 1
                if len(summary.errors) < 20:
                    summary.errors.append(failure.message)
            else:
                assert result is not None
                summary.completed += 1
                summary.prompt_tokens += result.prompt_tokens or 0
                summary.completion_tokens += result.completion_tokens or 0
            bar.advance(
                error=failure is not None,
                tokens=(result.prompt_tokens or 0) + (result.completion_tokens or 0) if result else 0,
            )

        try:
            async with BatchWriter[_Stored](
                lambda batch: _store_responses(engine, batch), in_thread=not is_sqlite(engine)
            ) as writer:
                await run_workers(jobs, lambda job: work(job, writer), concurrency or config.concurrency)
        finally:
            for client in clients.values():
                await client.close()
    return summary


def run_generation(engine: Engine, experiment: Experiment, **kwargs: Any) -> GenerationSummary:
    """Synchronous :func:`run_generation_async` (same arguments)."""
    return asyncio.run(run_generation_async(engine, experiment, **kwargs))
