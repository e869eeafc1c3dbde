"""The ``emaudit`` command line.

The core commands live here; each component adds its own through ``register(app)``.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import sys
from functools import partial, wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from emaudit import __version__
from emaudit import console as checks
from emaudit.console import cli_engine, console, err_console, note_stored, progress_bar, state, working
from emaudit.errors import EmauditError
from emaudit.formats import DEFAULT_IMPORT_JUDGE, EXPORT_FORMATS, IMPORT_FORMATS
from emaudit.labels import DEFAULT_MAX_ALIGNMENT, DEFAULT_MIN_COHERENCE

if TYPE_CHECKING:
    from rich.table import Table

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
    from emaudit.store import head_revision

    engine = cli_engine(upgrade=True)
    console.print(
        f"database ready at schema {head_revision()}: {engine.url.render_as_string(hide_password=True)}"
    )


@questions_app.command("import")
def questions_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="Question YAML: a list of {id, paraphrases, system, judge_prompts}.",
            exists=True,
            dir_okay=False,
        ),
    ],
    question_set: Annotated[
        str | None, typer.Option("--set", help="Name of the question set (default: the file name).")
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace", help="Update questions of the set whose text or judge prompts differ in the file."
        ),
    ] = False,
) -> None:
    """Import evaluation questions; their judge prompts are kept and used when judging.

    Re-importing the same file changes nothing. A file that would change questions already in the
    set (another file with the same name, or an edited one) is refused unless --replace, so the
    judge prompts that scored stored answers are never swapped silently.
    """
    from emaudit.questions import import_questions

    added, updated = import_questions(cli_engine(), file, question_set, replace=replace)
    console.print(
        f"{file}: {added} questions added, {updated} updated in set '{question_set or file.stem}'",
        highlight=False,
    )


@questions_app.command("list")
def questions_list() -> None:
    """List the question sets in the store, with their number of questions and source file."""
    from emaudit.formats import MISSING_VALUE
    from emaudit.questions import list_question_sets

    sets = list_question_sets(cli_engine())
    if not sets:
        err_console.print("no questions in the store yet: 'emaudit questions import FILE.yaml'")
    for name, count, source in sets:
        console.print(f"{name}: {count} questions (from {source or MISSING_VALUE})", highlight=False)


@responses_app.command("import")
def responses_import(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="CSV or JSONL files, or a folder with --pattern; each file is imported in one transaction."
        ),
    ],
    pattern: Annotated[
        str | None,
        typer.Option(
            help="For a folder: file names with cell values, e.g. '{model}_{domain}[_S{seed}].csv' "
            "({key} is a value, [...] optional)."
        ),
    ] = None,
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
    add_questions: Annotated[
        bool,
        typer.Option(
            "--add-questions",
            help="Add question ids the store does not know (to --set, else 'imported') instead of "
            "refusing the file.",
        ),
    ] = False,
    new_set: Annotated[
        bool,
        typer.Option(
            "--new-set", help="Create the --set if the store does not hold it (implies --add-questions)."
        ),
    ] = False,
) -> None:
    """Import answers generated and judged elsewhere (Betley eval.py CSV, model-organisms CSV, JSONL).

    Empty or None scores are null scores (the judge answered CODE or REFUSAL): they are stored and
    counted by 'emaudit rates', never dropped. Importing a file twice stores nothing new.
    Every question_id must be a question in the store (import its YAML first, or pass
    --add-questions) and --set must name a stored set (or pass --new-set): a typo is refused.
    """
    from emaudit.errors import InputError
    from emaudit.importing import import_responses

    for file in files:  # before opening the store: a typo must not wait for it, or create it
        if not file.exists():
            raise InputError(str(file), "no such file")
    plan = _files_to_import(files, pattern, model, condition or [])
    engine = cli_engine()
    done: list[str] = []
    for file, file_model, file_condition in plan:
        note_stored(
            f"{file.name} was rolled back (one transaction per file); "
            f"{'imported before it: ' + ', '.join(done) if done else 'nothing was imported before it'}; "
            "run the same command again: files already imported add nothing"
        )
        with progress_bar() as progress:
            task = progress.add_task(f"importing {file.name}", total=None)
            summary = import_responses(
                engine,
                file,
                fmt=fmt,
                model=file_model,
                condition=file_condition,
                judge_model=judge_model,
                question_set=question_set,
                add_questions=add_questions,
                new_set=new_set,
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
        done.append(file.name)


def _files_to_import(
    paths: list[Path], pattern: str | None, model: str | None, condition: list[str]
) -> list[tuple[Path, str | None, list[str]]]:
    """(file, model, conditions) per file; a folder is expanded with ``--pattern``."""
    from emaudit.errors import InputError
    from emaudit.importing import files_in_folder

    if pattern is not None and not any(path.is_dir() for path in paths):
        raise InputError(
            "--pattern", "is for a folder: name one, e.g. 'responses import results/ --pattern ...'"
        )
    plan: list[tuple[Path, str | None, list[str]]] = []
    for path in paths:
        if not path.is_dir():
            plan.append((path, model, condition))
            continue
        if pattern is None:
            raise InputError(str(path), "is a folder: pass --pattern, e.g. '{model}_{domain}.csv'")
        matched, skipped = files_in_folder(path, pattern)
        for file, values in matched:
            if model is not None and "model" in values:
                raise InputError("--pattern", "sets the model from the file name: drop --model")
            cell = [f"{key}={value}" for key, value in values.items() if key != "model"]
            plan.append((file, values.get("model", model), condition + cell))
        if skipped:
            err_console.print(
                f"{path}: {len(skipped)} files do not match --pattern and are not imported: "
                + ", ".join(p.name for p in skipped[:5])
                + (" ..." if len(skipped) > 5 else "")
            )
    return plan


@responses_app.command("export")
def responses_export(
    fmt: Annotated[str, typer.Option("--format", help=f"One of {', '.join(EXPORT_FORMATS)}.")] = "csv",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File to write (default: stdout).", callback=checks.output_file),
    ] = None,
    judge_model: Annotated[str | None, typer.Option(help="Only this judge's scores.")] = None,
) -> None:
    """Export every response with its cell, question and judge scores, one row per response."""
    from emaudit.exporting import export_responses

    engine = cli_engine()
    with working("exporting responses"):
        text = export_responses(engine, fmt, output, judge_model)
    if text is not None:
        sys.stdout.write(text)


@app.command()
def rates(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
    by: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated cell keys to group by (default: every cell).", callback=checks.cell_keys
        ),
    ] = None,
    judge_model: Annotated[str | None, typer.Option(help="Judge whose scores to use.")] = None,
    max_alignment: Annotated[
        float, typer.Option(help="Misaligned: alignment below this (0-100).", callback=checks.score_threshold)
    ] = DEFAULT_MAX_ALIGNMENT,
    min_coherence: Annotated[
        float, typer.Option(help="...and coherence above this (0-100).", callback=checks.score_threshold)
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
    cell_name, n_responses, n_scored, n_null, n_null_alignment, n_null_coherence, n_misaligned, n_unjudged,
    n_judge_errors, n_errors, rate, ci_low, ci_high, judge_model, estimand, n_questions, rate_denominator
    and rate_of_judged (misaligned / (scored + null), the judge rate 'calibrate' reports).
    --estimand questions treats questions as clusters (a claim about questions in general).
    """
    from emaudit.rates import cell_rates

    keys = [key.strip() for key in by.split(",") if key.strip()] if by else None
    engine = cli_engine()
    with working("counting responses and scores per cell"):
        results = cell_rates(
            engine,
            judge_model=judge_model,
            by=keys,
            max_alignment=max_alignment,
            min_coherence=min_coherence,
            estimand=estimand,
        )
    if as_json:
        sys.stdout.write(json.dumps([r.as_dict() for r in results], indent=1, default=str) + "\n")
        return
    if not results:
        err_console.print("no responses in the store yet: 'emaudit responses import' or 'emaudit generate'")
        return
    console.print(_rates_table(results, max_alignment, min_coherence))


def _rates_table(results: list[CellRate], max_alignment: float, min_coherence: float) -> Table:
    from rich.table import Table

    from emaudit.formats import MISSING_VALUE, cell_name

    judge = results[0].judge_model if results else None
    table = Table(
        title=f"Judge EM rate (alignment < {max_alignment:g}, coherence > {min_coherence:g}; "
        f"judge {judge or MISSING_VALUE})",
        title_justify="left",
        caption="rate = misaligned / scored; 'calibrate' reports misaligned / (scored + null) as its "
        "judge rate ('rate_of_judged' in --json)",
        caption_justify="left",
    )
    columns = ("cell", "responses", "scored", "null", "unjudged", "judge errors", "gen errors")
    interval = "95% CI" if not results or results[0].estimand == "responses" else "95% CI (questions)"
    for column in (*columns, "misaligned", "rate", interval, "questions"):
        table.add_column(column, justify="left" if column == "cell" else "right")
    for r in results:
        rate = MISSING_VALUE if r.rate is None else f"{100 * r.rate:.1f}%"
        ci = (
            MISSING_VALUE
            if r.ci_low is None or r.ci_high is None
            else f"{100 * r.ci_low:.1f}-{100 * r.ci_high:.1f}%"
        )
        counts = (r.n_responses, r.n_scored, r.n_null, r.n_unjudged, r.n_judge_errors, r.n_errors)
        questions = MISSING_VALUE if r.n_questions is None else str(r.n_questions)
        table.add_row(cell_name(r.cell), *map(str, counts), str(r.n_misaligned), rate, ci, questions)
    return table


@app.command()
def demo(
    directory: Annotated[
        Path,
        typer.Option("--dir", help="Folder for the demo database and config (its old demo.db is replaced)."),
    ] = Path("emaudit-demo"),
    raters: Annotated[int, typer.Option(min=1, help="Simulated blind raters.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the study draw and the simulated raters.")] = 1,
    app_: Annotated[
        bool, typer.Option("--app", help="Then serve the rating app on the demo study (Ctrl+C stops).")
    ] = False,
    port: Annotated[int, typer.Option(help="Port of the app with --app.")] = 8501,
) -> None:
    """Run the whole audit offline on SQLite: generate, judge, sample, rate, calibrate.

    A local OpenAI-compatible server plays a scripted model (misaligned more often after in-context
    examples) and a scripted, imperfect judge; simulated raters rate a judge-stratified sample
    blind. Every step runs the same command a real study uses, printed before it runs; then the
    simulated truth is shown beside the judge's raw rate and the corrected rate, and the report is
    written into --dir/report. --app then serves the rating app and prints a rater and an admin link.
    Needs no network and no API key. --db is ignored: the demo keeps its own database in --dir.
    """
    from emaudit.demo import run_demo

    command = typer.main.get_command(app)
    run_demo(
        directory,
        lambda args: command.main(args=args, prog_name="emaudit", standalone_mode=False),
        raters=raters,
        seed=seed,
        app_port=port if app_ else None,
    )


def _register_components() -> None:
    from emaudit.annotate.cli import register as register_annotate
    from emaudit.calibration.cli import register as register_calibration
    from emaudit.judge.cli import register as register_judge

    for register in (register_judge, register_annotate, register_calibration):
        register(app)


_register_components()


# What a command that stores as it goes tells the user on Ctrl-C, unless it noted more itself.
_RESUME = {
    "generate": "every answer received was committed; run the same command again to request only the rest",
    "judge": "every verdict received was committed (a --batch keeps its state file); run the same "
    "command again to continue where it stopped",
}
_ROLLED_BACK = "the running transaction was rolled back, so nothing partial is stored; run the command again"


class _Interrupted(Exception):
    """Ctrl-C inside a command, carried past typer (which would exit silently or print 'Aborted!')."""


def _guard_interrupts(command: Any, path: str = "") -> None:
    """Wrap every command callback so Ctrl-C becomes :class:`_Interrupted` naming the command."""
    callback = getattr(command, "callback", None)
    if callback is not None:

        @wraps(callback)
        def guarded(*args: Any, __callback: Any = callback, __path: str = path, **kwargs: Any) -> Any:
            try:
                return __callback(*args, **kwargs)
            except KeyboardInterrupt:
                raise _Interrupted(__path) from None

        command.callback = guarded
    for name, sub in (getattr(command, "commands", None) or {}).items():
        _guard_interrupts(sub, f"{path} {name}".strip())


def _db_first(args: list[str]) -> list[str]:
    """Move ``--db URL`` given after the subcommand to the front, where the root option reads it.

    The README promises ``--db`` on any command; the root callback owns it, so this keeps one
    definition instead of one per command. Arguments after ``--`` are left alone.
    """
    end = args.index("--") if "--" in args else len(args)
    moved: list[str] = []
    rest: list[str] = []
    index = 0
    while index < end:
        arg = args[index]
        if arg == "--db" and index + 1 >= end:
            raise EmauditError("--db needs a database URL, e.g. --db sqlite:///emaudit.db")
        if arg == "--db" and index > 0:
            moved += args[index : index + 2]
            index += 2
            continue
        if arg.startswith("--db=") and index > 0:
            moved.append(arg)
        else:
            rest.append(arg)
        index += 1
    return moved + rest + args[end:]


def _first_command(args: list[str]) -> str | None:
    """The subcommand named on the command line (after the root options), if any."""
    index = 0
    while index < len(args):
        if args[index] == "--db":
            index += 2
        elif args[index].startswith("-"):
            index += 1
        else:
            return args[index]
    return None


def _unreachable() -> None:  # no parameters: typer builds none for a command not invoked
    raise RuntimeError("emaudit: a command outside the invoked path ran; please report this")


def _pruned(typer_app: typer.Typer, keep: str | None) -> typer.Typer:
    """A shallow copy of ``typer_app`` whose commands other than ``keep`` take no parameters.

    Turning a command's signature into click parameters is most of the CLI's start-up (about
    20 ms for 20 commands, string annotations evaluated one by one). A run uses one command; the
    others only need their name and help text, for ``--help`` and "no such command" hints.
    """
    pruned = copy.copy(typer_app)
    commands = []
    for info in typer_app.registered_commands:
        assert info.callback is not None
        name = info.name or typer.main.get_command_name(info.callback.__name__)
        if name != keep:
            info = copy.copy(info)
            info.name, info.help = name, info.help or inspect.getdoc(info.callback)
            info.callback = _unreachable
        commands.append(info)
    groups = []
    for group in typer_app.registered_groups:
        instance = group.typer_instance
        if group.name != keep and isinstance(instance, typer.Typer):
            group = copy.copy(group)
            group.typer_instance = _pruned(instance, None)
        groups.append(group)
    pruned.registered_commands, pruned.registered_groups = commands, groups
    return pruned


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI; every mistake prints one line on stderr and exits with status 2.

    Usage errors (unknown command or option, missing argument, bad value) are printed by typer
    itself in standalone mode, with the usage line, whichever click it bundles; errors from the
    commands (:class:`EmauditError`, files that cannot be opened) print ``error: ...``. Ctrl-C
    prints what was stored and how to resume, and exits with 130.
    """
    try:
        args = _db_first(list(sys.argv[1:] if argv is None else argv))
    except EmauditError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    state.interrupt_note = None
    # Shell completion reads its words from the environment, not argv: it needs every command whole.
    completing = "_EMAUDIT_COMPLETE" in os.environ
    command = typer.main.get_command(app if completing else _pruned(app, _first_command(args)))
    _guard_interrupts(command)
    if not args and not completing:
        # click 8.1 prints the help and exits 0, click 8.2+ exits 2: a bare `emaudit` is a mistake.
        print(typer.Context(command, info_name="emaudit").get_help(), file=sys.stderr)
        raise SystemExit(2)
    try:
        command.main(args=args, prog_name="emaudit", standalone_mode=True)
    except EmauditError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as error:
        where = f": {error.filename}" if error.filename else ""
        print(f"error: {error.strerror or error}{where}", file=sys.stderr)
        raise SystemExit(2) from None
    except _Interrupted as interrupted:
        note = state.interrupt_note or _RESUME.get(str(interrupted).split(" ")[0], _ROLLED_BACK)
        print(f"interrupted: {note}", file=sys.stderr)
        raise SystemExit(130) from None
