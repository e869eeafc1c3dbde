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

judges_app = typer.Typer(
    help="The judges in the store: what scored what, how, and how they compare on human labels.",
    no_args_is_help=True,
)

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


def _split_targets(targets: list[str] | None, config: Path | None) -> tuple[bool, Path | None]:
    """(probe only?, config path) from ``judge [probe] [CONFIG]`` and ``--config``."""
    words = list(targets or [])
    probe_only = bool(words) and words[0] == "probe" and not Path("probe").exists()
    if probe_only:
        words = words[1:]
    if len(words) > 1:
        raise EmauditError(f"judge: expected at most one config file, got {', '.join(words)}")
    if words and config is not None:
        raise EmauditError("judge: give the config once, as an argument or with --config")
    return probe_only, Path(words[0]) if words else config


def _rubric_files(rubric: list[str] | None) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for entry in rubric or []:
        metric, sep, path = entry.partition("=")
        if not sep or not metric.strip() or not path.strip():
            raise EmauditError(f"--rubric: expected METRIC=FILE, got '{entry}'")
        files[metric.strip()] = Path(path.strip())
    return files


def _study_response_ids(study: str) -> list[int]:
    from sqlmodel import Session, col, select

    from emaudit.models import Study, StudyItem

    with Session(cli_engine()) as session:
        row = session.exec(select(Study).where(Study.name == study)).first()
        if row is None:
            names = sorted(session.exec(select(Study.name)))
            raise EmauditError(f"--study: unknown study '{study}'; studies: {', '.join(names) or 'none'}")
        ids = session.exec(
            select(StudyItem.response_id).where(
                StudyItem.study_id == row.id, col(StudyItem.response_id).is_not(None)
            )
        )
        return sorted({int(rid) for rid in ids if rid is not None})


def judge(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[probe] [CONFIG]",
            help="The experiment config (as for 'generate'); 'probe' first only probes the judge.",
            show_default=False,
        ),
    ] = None,
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
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Requests in flight (default: the config's 'concurrency', else 16)."),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="Judge endpoint (default: the config's, else the OpenAI API).")
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Name of the environment variable holding the judge's API key.")
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            help="'auto' (the probe decides), 'logprobs' (top-20 logprobs of one token) or 'sampled' "
            "(expected score from --samples answers)."
        ),
    ] = None,
    samples: Annotated[
        int | None, typer.Option(min=1, help="k of sampled mode (default: the config's, else 10).")
    ] = None,
    rubric: Annotated[
        list[str] | None,
        typer.Option(help="METRIC=FILE: a custom judge prompt with {question} and {answer} (repeatable)."),
    ] = None,
    study: Annotated[
        str | None,
        typer.Option(help="Judge only this study's items (to calibrate a new judge on its labels)."),
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

    'emaudit judge probe [CONFIG]' only probes the judge: one to three cheap requests find out
    whether it returns logprobs, honours max_tokens=1, answers the Betley prompt with a number,
    and whether it is a reasoning model needing other parameters; it prints one line and records
    the result in EMAUDIT_DATA_DIR/judge_probes.json (exit 2 when the judge is unusable). Judging
    probes first too: an unreachable endpoint stops at once with one line (exit 2), and the
    default mode 'auto' uses logprobs where the endpoint has them, else sampled mode, the mean of
    k sampled answers (n per request where the API has it). Each verdict stores its mode,
    parameters, the model requested and reported, and hashes of the template and exact prompt.

    Each question's own judge prompts are used when it has them, else Betley et al.'s aligned and
    coherent prompts (--rubric replaces either). In logprobs mode the judge answers one token
    (temperature 0, top_logprobs=20) and the score is the probability-weighted mean over integer
    tokens 0-100; with less than 0.25 of the probability on numbers the score is null and CODE /
    REFUSAL / UNPARSEABLE is recorded. Several judge models may score the same responses; each
    keeps its own rows; --study judges only one study's items. The judge endpoint comes from the
    options, else the config's 'judge' section (its 'endpoint' may name one of the config's
    endpoints), else the OpenAI API with OPENAI_API_KEY (and a note says so).

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
    from .judging import judge_spec, probe_judge, run_judging_async

    probe_only, config = _split_targets(targets, config)
    experiment_config = load_config(config) if config is not None else None
    metrics = [m.strip() for m in metric.split(",") if m.strip()] if metric else None
    if metric is not None and not metrics:
        raise EmauditError("--metric: give at least one metric, e.g. aligned,coherent")
    spec = judge_spec(
        experiment_config,
        source=config.name if config is not None else "config",
        base_dir=config.resolve().parent if config is not None else None,
        model=judge_model,
        base_url=base_url,
        api_key_env=api_key_env,
        metrics=metrics,
        mode=mode,
        samples=samples,
        label=label,
        rubrics=_rubric_files(rubric),
    )
    if spec.fallback:
        err_console.print(spec.fallback, highlight=False)
    if probe_only:
        result = asyncio.run(probe_judge(spec))
        console.print(result.verdict(), highlight=False)
        if result.mode is None:
            raise typer.Exit(2)
        return
    response_ids = _study_response_ids(study) if study is not None else None
    engine = cli_engine()
    if batch:
        batch_summary = asyncio.run(
            run_judging_batch_async(
                engine,
                spec,
                response_ids=response_ids,
                retry_errors=retry_errors,
                wait=wait,
                poll_interval=poll_interval,
                progress=err_console.is_terminal,
            )
        )
        _print_batch_summary(spec, batch_summary)
        return
    in_flight = concurrency or (experiment_config.concurrency if experiment_config is not None else 16)
    summary = asyncio.run(
        run_judging_async(
            engine,
            spec,
            concurrency=in_flight,
            response_ids=response_ids,
            retry_errors=retry_errors,
            progress=err_console.is_terminal,
        )
    )
    if summary.probe is not None:
        err_console.print(f"probe: {summary.probe.verdict()}", highlight=False)
    scope = f" on study {study}" if study is not None else ""
    console.print(
        f"judge {summary.judge_model} ({', '.join(spec.metrics)}){scope}: "
        f"{summary.planned} verdicts planned, {summary.skipped} already stored, "
        f"{summary.scored} scored, {summary.special} null "
        f"(CODE/REFUSAL/UNPARSEABLE), {summary.failed} failed",
        highlight=False,
    )
    if summary.failed:
        err_console.print(
            f"{summary.failed} judge requests failed and are stored as errors (first: {summary.errors[0]}); "
            "'emaudit judge --retry-errors' tries them again"
        )


def _print_batch_summary(spec: JudgeSpec, summary: BatchJudgeSummary) -> None:
    if summary.probe is not None:
        err_console.print(f"probe: {summary.probe.verdict()}", highlight=False)
    if summary.resumed:
        head = f"resumed {', '.join(summary.resumed)} ({summary.planned} requests)"
    else:
        head = (
            f"{summary.planned} verdicts planned, {summary.skipped} already stored, "
            f"{summary.submitted} submitted"
        )
    console.print(
        f"judge --batch {summary.judge_model or spec.judge_model} ({', '.join(spec.metrics)}): {head}; "
        f"{summary.scored} scored, "
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


@judges_app.command("list")
def judges_list(
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON record per judge, prompt and mode.")
    ] = False,
) -> None:
    """Every judge in the store: verdict counts, mode, models requested and reported, prompt hash."""
    import json

    from .inventory import judge_inventory

    rows = judge_inventory(cli_engine())
    if as_json:
        console.print_json(json.dumps([row.to_dict() for row in rows]))
        return
    if not rows:
        console.print("no judge verdicts in the store: run 'emaudit judge' or import scores")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("judge", "metric", "mode", "verdicts", "scored", "null", "errors", "reported", "prompt"):
        table.add_column(
            column, justify="right" if column in ("verdicts", "scored", "null", "errors") else "left"
        )
    for row in rows:
        table.add_row(
            row.judge_model,
            row.metric,
            row.mode_text,
            str(row.verdicts),
            str(row.scored),
            str(row.null),
            str(row.errors),
            ", ".join(row.reported_models) or "-",
            row.prompt_hash[:12] or "-",
        )
    console.print(table)


def _finite(value: object) -> object:
    """``value`` with NaN floats as None (JSON has no NaN)."""
    if isinstance(value, float):
        return None if value != value else value
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _pct(estimate: dict[str, object] | None) -> str:
    if not estimate or estimate.get("rate") is None:
        return "-"
    rate, low, high = (float(estimate[k]) for k in ("rate", "low", "high"))  # type: ignore[arg-type]
    if rate != rate:
        return "-"
    if low != low:
        return f"{rate:.1%}"
    return f"{rate:.1%} [{low:.1%}, {high:.1%}]"


@judges_app.command("compare")
def judges_compare(
    study: Annotated[str, typer.Option(help="The study whose human labels the judges are compared on.")],
    judges: Annotated[
        str | None, typer.Option(help="Comma-separated judges (default: every judge that scored its items).")
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="Judge the differences are taken against (default: the study's).")
    ] = None,
    n_boot: Annotated[int, typer.Option(min=0, help="Bootstrap replicates of the AUC intervals.")] = 500,
    as_json: Annotated[bool, typer.Option("--json", help="The comparison document as JSON.")] = False,
) -> None:
    """Compare judges on the same human labels: raw rate, Se/Sp/FNR/FPR, corrected rate, AUC.

    Every estimate is weighted by the study's design (the strata its own judge drew), so a judge
    scored afterwards with 'emaudit judge --study S --judge-model B' is estimated as validly as
    the design's judge. Paired differences (judge minus the reference) use the items both judged.
    Labels of the tuning split ('study create --tuning-share F') only choose each judge's
    threshold; the output says how many labels were used for what.
    """
    import json

    from .compare import study_comparison

    names = [j.strip() for j in judges.split(",") if j.strip()] if judges else None
    comparison = study_comparison(cli_engine(), study, judges=names, reference=reference, n_boot=n_boot)
    document = comparison.to_dict()
    if as_json:
        console.print_json(json.dumps(_finite(document), allow_nan=False))
        return
    from rich.table import Table

    used = document["labels_used"]
    console.print(
        f"study {study}: {used['estimation']} human labels for the estimates, {used['tuning']} for tuning "
        f"thresholds; estimand: these responses; human rate {_pct(document['human_rate'])}",
        highlight=False,
    )
    table = Table(box=None, pad_edge=False)
    for column in ("judge", "labelled", "raw rate", "sensitivity", "specificity", "corrected rate", "AUC"):
        table.add_column(column)
    for row in document["judges"]:
        table.add_row(
            row["judge"],
            str(row["n_labelled"]),
            _pct(row["raw_rate"]),
            _pct(row["sensitivity"]),
            _pct(row["specificity"]),
            _pct(row["corrected_rate"]),
            _pct(row["auc"]),
        )
    console.print(table)
    for difference in document["differences"]:
        console.print(
            f"{difference['judge']} - {difference['reference']} {difference['measure']}: "
            f"{_pct(difference['difference'])} ({difference['n_paired']} paired items)",
            highlight=False,
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
    app.add_typer(judges_app, name="judges")
