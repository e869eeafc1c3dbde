"""The ``emaudit`` command line.

The core commands live here; each component adds its own through ``register(app)``.
"""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import typer
from rich.table import Table

from emaudit import __version__
from emaudit.console import cli_engine, console, progress_bar, state
from emaudit.errors import EmauditError
from emaudit.formats import DEFAULT_IMPORT_JUDGE, EXPORT_FORMATS, IMPORT_FORMATS
from emaudit.labels import DEFAULT_MAX_ALIGNMENT, DEFAULT_MIN_COHERENCE
from emaudit.store import head_revision, open_store

if TYPE_CHECKING:
    from emaudit.rates import CellRate

# pandas, statsmodels and the importers load inside the commands that use them, so that
# `emaudit --help` and quick commands start fast.

app = typer.Typer(
    name="emaudit",
    help=(
        "Measure emergent misalignment honestly: generate and judge answers, have humans audit a "
        "stratified sample, and report error-corrected EM rates with valid intervals.\n\n"
        "The database is EMAUDIT_DATABASE_URL (default sqlite:///./emaudit.db) or --db."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
questions_app = typer.Typer(help="Evaluation questions (Betley et al. question YAML).", no_args_is_help=True)
responses_app = typer.Typer(help="Model answers and their judge scores.", no_args_is_help=True)
app.add_typer(questions_app, name="questions")
app.add_typer(responses_app, name="responses")


def _version(value: bool) -> None:
    if value:
        console.print(f"emaudit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar="EMAUDIT_DATABASE_URL",
            help="Database URL (sqlite:///file.db or postgresql://...).",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    state.database_url = db


@app.command()
def init() -> None:
    """Create the database, or upgrade an older one to this release's schema (never drops data)."""
    engine = open_store(state.database_url, upgrade=True)
    console.print(
        f"database ready at schema {head_revision()}: {engine.url.render_as_string(hide_password=True)}"
    )


@questions_app.command("import")
def questions_import(
    file: Annotated[
        Path, typer.Argument(help="Question YAML: a list of {id, paraphrases, system, judge_prompts}.")
    ],
    question_set: Annotated[
        str | None, typer.Option("--set", help="Name of the question set (default: the file name).")
    ] = None,
) -> None:
    """Import evaluation questions; their judge prompts are kept and used when judging."""
    from emaudit.questions import import_questions

    added, updated = import_questions(cli_engine(), file, question_set)
    console.print(f"{file}: {added} questions added, {updated} updated in set '{question_set or file.stem}'")


@responses_app.command("import")
def responses_import(
    files: Annotated[
        list[Path], typer.Argument(help="CSV or JSONL files; each is imported in one transaction.")
    ],
    fmt: Annotated[str, typer.Option("--format", help=f"One of {', '.join(IMPORT_FORMATS)}.")] = "auto",
    model: Annotated[
        str | None,
        typer.Option(help="Model for every row (default: the file's model column, else its name)."),
    ] = None,
    condition: Annotated[
        list[str] | None,
        typer.Option(help="Cell field for every row, KEY=VALUE (domain=medical, n_shots=16); repeatable."),
    ] = None,
    judge_model: Annotated[str, typer.Option(help="Judge that produced the scores.")] = DEFAULT_IMPORT_JUDGE,
    question_set: Annotated[
        str | None, typer.Option("--set", help="Question set the question ids belong to.")
    ] = None,
) -> None:
    """Import answers generated and judged elsewhere (Betley eval.py CSV, model-organisms CSV, JSONL).

    Empty or None scores are null scores (the judge answered CODE or REFUSAL): they are stored and
    counted by 'emaudit rates', never dropped. Importing a file twice stores nothing new.
    """
    from emaudit.importing import import_responses

    engine = cli_engine()
    for file in files:
        with progress_bar() as progress:
            task = progress.add_task(f"importing {file.name}", total=None)
            summary = import_responses(
                engine,
                file,
                fmt=fmt,
                model=model,
                condition=condition,
                judge_model=judge_model,
                question_set=question_set,
                on_rows=partial(progress.advance, task),
            )
        nulls = (
            ", ".join(f"{metric} {count}" for metric, count in sorted(summary.null_scores.items())) or "none"
        )
        console.print(
            f"{file}: {summary.rows} rows ({summary.format}), {summary.new_responses} new responses, "
            f"{summary.new_scores} new scores (metrics: {', '.join(summary.metrics)}; null scores: {nulls})",
            highlight=False,
        )
        if summary.ignored_columns:
            console.print(f"  ignored columns: {', '.join(summary.ignored_columns)}", highlight=False)


@responses_app.command("export")
def responses_export(
    fmt: Annotated[str, typer.Option("--format", help=f"One of {', '.join(EXPORT_FORMATS)}.")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    judge_model: Annotated[str | None, typer.Option(help="Only this judge's scores.")] = None,
) -> None:
    """Export every response with its cell, question and judge scores, one row per response."""
    from emaudit.exporting import export_responses

    text = export_responses(cli_engine(), fmt, output, judge_model)
    if text is not None:
        sys.stdout.write(text)


@app.command()
def rates(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
    by: Annotated[
        str | None, typer.Option(help="Comma-separated cell keys to group by (default: every cell).")
    ] = None,
    judge_model: Annotated[str | None, typer.Option(help="Judge whose scores to use.")] = None,
    max_alignment: Annotated[
        float, typer.Option(help="Misaligned: alignment below this.")
    ] = DEFAULT_MAX_ALIGNMENT,
    min_coherence: Annotated[
        float, typer.Option(help="...and coherence above this.")
    ] = DEFAULT_MIN_COHERENCE,
    estimand: Annotated[
        str,
        typer.Option(
            help="responses (these answers: Wilson) or questions (questions as clusters: cluster-robust)."
        ),
    ] = "responses",
) -> None:
    """The judge's raw EM rate per cell, with a Wilson 95% interval and every response counted.

    rate = misaligned / scored. Responses with a null score (CODE/REFUSAL), not yet judged, or
    whose generation or judging failed are counted in their own columns. JSON records carry cell,
    n_responses, n_scored, n_null, n_null_alignment, n_null_coherence, n_misaligned, n_unjudged,
    n_judge_errors, n_errors, rate, ci_low, ci_high, judge_model, estimand and n_questions.
    --estimand questions treats questions as clusters (a claim about questions in general).
    """
    from emaudit.rates import cell_rates

    keys = [key.strip() for key in by.split(",") if key.strip()] if by else None
    results = cell_rates(
        cli_engine(),
        judge_model=judge_model,
        by=keys,
        max_alignment=max_alignment,
        min_coherence=min_coherence,
        estimand=estimand,
    )
    if as_json:
        sys.stdout.write(json.dumps([r.as_dict() for r in results], indent=1, default=str) + "\n")
        return
    console.print(_rates_table(results, max_alignment, min_coherence))


def _rates_table(results: list[CellRate], max_alignment: float, min_coherence: float) -> Table:
    judge = results[0].judge_model if results else None
    table = Table(
        title=f"Judge EM rate (alignment < {max_alignment:g}, coherence > {min_coherence:g}; judge {judge})",
        title_justify="left",
    )
    for column in (
        "cell",
        "responses",
        "scored",
        "null",
        "unjudged",
        "errors",
        "misaligned",
        "rate",
        "95% CI" if not results or results[0].estimand == "responses" else "95% CI (questions)",
        "questions",
    ):
        table.add_column(column, justify="left" if column == "cell" else "right")
    for r in results:
        cell = " ".join(f"{k}={v}" for k, v in r.cell.items())
        rate = "-" if r.rate is None else f"{100 * r.rate:.1f}%"
        ci = "-" if r.ci_low is None or r.ci_high is None else f"{100 * r.ci_low:.1f}-{100 * r.ci_high:.1f}%"
        table.add_row(
            cell,
            str(r.n_responses),
            str(r.n_scored),
            str(r.n_null),
            str(r.n_unjudged),
            str(r.n_errors + r.n_judge_errors),
            str(r.n_misaligned),
            rate,
            ci,
            str(r.n_questions),
        )
    return table


@app.command()
def demo(
    directory: Annotated[
        Path,
        typer.Option("--dir", help="Folder for the demo database and config (its old demo.db is replaced)."),
    ] = Path("emaudit-demo"),
    raters: Annotated[int, typer.Option(min=1, help="Simulated blind raters.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the study draw and the simulated raters.")] = 0,
) -> None:
    """Run the whole audit offline on SQLite: generate, judge, sample, rate, calibrate.

    A local OpenAI-compatible server plays a scripted model (misaligned more often after in-context
    examples) and a scripted, imperfect judge; simulated raters rate a judge-stratified sample
    blind. Every step runs the same command a real study uses, printed before it runs, and the
    last one shows the judge's raw EM rate next to the error-corrected rate with its interval.
    Needs no network and no API key. --db is ignored: the demo keeps its own database in --dir.
    """
    from emaudit.demo import run_demo

    command = typer.main.get_command(app)
    run_demo(
        directory,
        lambda args: command.main(args=args, prog_name="emaudit", standalone_mode=False),
        raters=raters,
        seed=seed,
    )


def _register_components() -> None:
    from emaudit.annotate.cli import register as register_annotate
    from emaudit.calibration.cli import register as register_calibration
    from emaudit.judge.cli import register as register_judge

    for register in (register_judge, register_annotate, register_calibration):
        register(app)


_register_components()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI; user errors print one line on stderr and exit with status 2."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="emaudit", standalone_mode=False)
    except EmauditError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except click.exceptions.UsageError as error:
        error.show()
        raise SystemExit(2) from None
    except click.ClickException as error:
        error.show()
        raise SystemExit(error.exit_code) from None
    except (click.exceptions.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    raise SystemExit(result if isinstance(result, int) else 0)
