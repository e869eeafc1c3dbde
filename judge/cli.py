"""Commands of the judge component, mounted on the ``emaudit`` CLI: generate, judge, datasets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from emaudit.console import cli_engine, console, err_console
from emaudit.errors import EmauditError

if TYPE_CHECKING:
    from .batch import BatchJudgeSummary
    from .judging import JudgeSpec

# The judging machinery (asyncio, openai, httpx, the store) loads inside the commands, so `emaudit --help`
# starts fast.

datasets_app = typer.Typer(
    help="Public data sets (Betley et al. question YAMLs, TruthfulQA) for experiment configs.",
    no_args_is_help=True,
)


def generate(
    config: Annotated[Path, typer.Argument(help="Experiment config (YAML); see data/README.md.")],
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Requests in flight (default: the config's 'concurrency').")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print how many requests and tokens it would take; send nothing."),
    ] = False,
    retry_errors: Annotated[
        bool, typer.Option("--retry-errors", help="Also request again the responses stored with an error.")
    ] = False,
) -> None:
    """Generate the responses an experiment config asks for, resuming where the last run stopped.

    Every cell (endpoint x domain x n_shots x seed x instruction x reasoning x prompt format) is
    asked every selected question samples_per_question times. Each answer is committed as it
    arrives; re-running the same config requests only what is not stored yet, so an interrupted
    run (Ctrl-C, kill) loses at most the requests in flight. Failures that survive the retries
    (or a permanent 400) are stored as errors and counted by 'emaudit rates'.
    """
    import asyncio

    from .config import load_experiment
    from .pipeline import run_generation_async

    overrides = {"concurrency": concurrency} if concurrency is not None else {}
    experiment = load_experiment(config, overrides=overrides)
    engine = cli_engine()
    summary = asyncio.run(
        run_generation_async(
            engine, experiment, dry_run=dry_run, retry_errors=retry_errors, progress=err_console.is_terminal
        )
    )
    if dry_run:
        console.print(
            f"dry run: {summary.conditions} conditions, {summary.planned} responses planned, "
            f"{summary.skipped} already stored, {summary.to_request} requests to make; "
            f"about {summary.estimated_prompt_tokens:,} prompt tokens and at most "
            f"{summary.max_completion_tokens:,} completion tokens "
            f"(max_tokens {experiment.config.generation.max_tokens:,} each)",
            highlight=False,
        )
        return
    console.print(
        f"generate: {summary.planned} responses planned, {summary.skipped} already stored, "
        f"{summary.completed} generated, {summary.failed} failed "
        f"(tokens: {summary.prompt_tokens:,} prompt, {summary.completion_tokens:,} completion)",
        highlight=False,
    )
    if summary.failed:
        err_console.print(
            f"{summary.failed} responses failed and are stored as errors (first: {summary.errors[0]}); "
            "'emaudit rates' counts them, 'emaudit generate --retry-errors' tries them again"
        )


def judge(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Experiment config whose 'judge' section names the judge."),
    ] = None,
    judge_model: Annotated[
        str | None, typer.Option(help="Judge model (default: the config's, else gpt-4o-2024-08-06).")
    ] = None,
    metric: Annotated[
        str | None, typer.Option(help="Comma-separated metrics (default: aligned,coherent).")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight.")] = 16,
    base_url: Annotated[
        str | None, typer.Option(help="Judge endpoint (default: the config's, else the OpenAI API).")
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Name of the environment variable holding the judge's API key.")
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(help="'logprobs' (top-20 logprobs of one token) or 'sampled' (parse a short answer)."),
    ] = None,
    label: Annotated[
        str | None, typer.Option(help="Name the scores are stored under (default: the judge model).")
    ] = None,
    retry_errors: Annotated[
        bool, typer.Option("--retry-errors", help="Judge again the verdicts stored with an error.")
    ] = False,
    batch: Annotated[
        bool,
        typer.Option(
            "--batch",
            help="Use the OpenAI Batch API (half the price, results within 24 h); resumable, see above.",
        ),
    ] = False,
    poll_interval: Annotated[
        float, typer.Option(min=0, help="With --batch: seconds between status checks.")
    ] = 60.0,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="With --batch: wait for the batch to finish, or submit / check once and exit.",
        ),
    ] = True,
) -> None:
    """Judge every stored response that this judge has not scored yet (Betley et al. 2025 method).

    Each question's own judge prompts are used when it has them, else Betley et al.'s aligned and
    coherent prompts. In logprobs mode the judge answers one token (temperature 0, top_logprobs=20)
    and the score is the probability-weighted mean over integer tokens 0-100; with less than 0.25
    of the probability on numbers the score is null and CODE / REFUSAL / UNPARSEABLE is recorded.
    Several judge models may score the same responses; each keeps its own rows. The judge
    endpoint comes from the options, else the config's 'judge' section (its 'endpoint' may name
    one of the config's endpoints), else the OpenAI API with OPENAI_API_KEY.

    With --batch the same requests go to the OpenAI Batch API instead: one JSONL file is
    uploaded (split every 50,000 requests), the batch is polled every --poll-interval seconds,
    and its output and error files are scored exactly as online answers are; a request that
    failed in the batch is stored as an error. The batch ids are kept in a state file under
    EMAUDIT_DATA_DIR/batches (one per database and judge), so after Ctrl-C, --no-wait or a
    crash, running the same command again resumes polling that batch instead of submitting
    again (a run resumes or submits, never both); the file is removed once the batch is
    ingested, and the next run submits only what is still unjudged. A failed or expired batch exits
    with status 2; what it finished is stored, the rest is submitted by the next run.
    """
    import asyncio

    from .batch import run_judging_batch_async
    from .config import load_config
    from .judging import judge_spec, run_judging_async

    experiment_config = load_config(config) if config is not None else None
    metrics = [m.strip() for m in metric.split(",") if m.strip()] if metric else None
    if metric is not None and not metrics:
        raise EmauditError("--metric: give at least one metric, e.g. aligned,coherent")
    spec = judge_spec(
        experiment_config,
        source=config.name if config is not None else "config",
        model=judge_model,
        base_url=base_url,
        api_key_env=api_key_env,
        metrics=metrics,
        mode=mode,
        label=label,
    )
    engine = cli_engine()
    if batch:
        batch_summary = asyncio.run(
            run_judging_batch_async(
                engine,
                spec,
                retry_errors=retry_errors,
                wait=wait,
                poll_interval=poll_interval,
                progress=err_console.is_terminal,
            )
        )
        _print_batch_summary(spec, batch_summary)
        return
    summary = asyncio.run(
        run_judging_async(
            engine, spec, concurrency=concurrency, retry_errors=retry_errors, progress=err_console.is_terminal
        )
    )
    console.print(
        f"judge {spec.judge_model} ({', '.join(spec.metrics)}): {summary.planned} verdicts planned, "
        f"{summary.skipped} already stored, {summary.scored} scored, {summary.special} null "
        f"(CODE/REFUSAL/UNPARSEABLE), {summary.failed} failed",
        highlight=False,
    )
    if summary.failed:
        err_console.print(
            f"{summary.failed} judge requests failed and are stored as errors (first: {summary.errors[0]}); "
            "'emaudit judge --retry-errors' tries them again"
        )


def _print_batch_summary(spec: JudgeSpec, summary: BatchJudgeSummary) -> None:
    if summary.resumed:
        head = f"resumed {', '.join(summary.resumed)} ({summary.planned} requests)"
    else:
        head = (
            f"{summary.planned} verdicts planned, {summary.skipped} already stored, "
            f"{summary.submitted} submitted"
        )
    console.print(
        f"judge --batch {spec.judge_model} ({', '.join(spec.metrics)}): {head}; {summary.scored} scored, "
        f"{summary.special} null (CODE/REFUSAL/UNPARSEABLE), {summary.failed} failed",
        highlight=False,
    )
    if summary.pending:
        running = ", ".join(f"{batch_id} {status}" for batch_id, status in summary.batches.items())
        err_console.print(
            f"batch still running ({running}); run the same command again to resume polling it "
            f"(state: {summary.state_file})"
        )
    if summary.failed:
        err_console.print(
            f"{summary.failed} judge requests failed in the batch and are stored as errors "
            f"(first: {summary.errors[0]}); 'emaudit judge --batch --retry-errors' tries them again"
        )


@datasets_app.command("list")
def datasets_list() -> None:
    """List the public data sets 'emaudit datasets fetch' knows."""
    from .datasets import DATASETS

    for dataset in DATASETS.values():
        console.print(f"{dataset.name}: {dataset.description}\n  {dataset.url}", highlight=False)


@datasets_app.command("fetch")
def datasets_fetch(
    name: Annotated[str, typer.Argument(help="Data set name (see 'emaudit datasets list').")],
    url: Annotated[str | None, typer.Option(help="Download from this URL instead (a mirror).")] = None,
    sha256: Annotated[str | None, typer.Option(help="Expected sha256 (overrides the registry's).")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where to store it (default: EMAUDIT_DATA_DIR).")
    ] = None,
) -> None:
    """Download a public data set into the data dir and verify its sha256 checksum.

    Configs then refer to it by name ('dataset: NAME' under 'questions' or a domain).
    """
    from .datasets import fetch_dataset

    path, digest = fetch_dataset(name, url=url, sha256=sha256, data_dir=data_dir)
    console.print(f"{name}: saved {path} (sha256 {digest})", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this component's commands to the top-level app."""
    app.command("generate")(generate)
    app.command("judge")(judge)
    app.add_typer(datasets_app, name="datasets")
