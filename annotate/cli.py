"""Commands of the annotate component, mounted on the `emaudit` CLI: study, raters, ratings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from emaudit import console as checks
from emaudit.annotate.allocation import DEFAULT_EXPECTED_RATES
from emaudit.annotate.app.server import serve_app
from emaudit.console import cli_engine, console, err_console, state, working
from emaudit.errors import EmauditError
from emaudit.formats import EXPORT_FORMATS
from emaudit.labels import JUDGE_LABEL, within_cell_stratum

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlmodel import Session as SQLModelSession

# The engine (pandas, numpy) and the store (SQLAlchemy, sqlmodel) load inside the commands, so
# `emaudit --help` starts fast; these two stand in for sqlmodel.Session and store.write_session.


@contextmanager
def Session(engine: Engine) -> Iterator[SQLModelSession]:
    from sqlmodel import Session as SQLModelSession

    with SQLModelSession(engine) as session:
        yield session


@contextmanager
def write_session(engine: Engine) -> Iterator[SQLModelSession]:
    from emaudit.store import write_session as store_write_session

    with store_write_session(engine) as session:
        yield session


study_app = typer.Typer(
    help="Annotation studies: stratified samples of judged answers for humans.", no_args_is_help=True
)
raters_app = typer.Typer(help="People who rate, and their personal links.", no_args_is_help=True)
ratings_app = typer.Typer(help="Human ratings in and out of files.", no_args_is_help=True)
study_items_app = typer.Typer(help="A study's items, for rating outside the app.", no_args_is_help=True)
study_app.add_typer(study_items_app, name="items")


def register(app: typer.Typer) -> None:
    """Add this component's commands to the top-level app."""
    app.add_typer(study_app, name="study")
    app.add_typer(raters_app, name="raters")
    app.add_typer(ratings_app, name="ratings")
    app.command("app")(run_app)


def run_app(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8501,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database URL (default: the global --db or EMAUDIT_DATABASE_URL)."),
    ] = None,
    address: Annotated[
        str,
        typer.Option(help="Address to listen on; 0.0.0.0 serves other machines (put TLS in front)."),
    ] = "localhost",
) -> None:
    """Start the rating app (Streamlit) for raters and admins; stop it with Ctrl+C.

    Raters open their personal link (`emaudit raters add`) or the study's crowd link (`emaudit
    study show`); admins (raters added with --role admin) also see the study overview, live
    agreement, adjudication queue and export pages. Set EMAUDIT_APP_URL so printed links point here.
    """
    url = db or state.database_url
    state.database_url = url
    engine = cli_engine()  # fail here, with the CLI's message, if the database is missing or old
    database_url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    err_console.print(f"rating app on http://{address}:{port} (database {engine.url!r})")
    raise typer.Exit(serve_app(database_url, port=port, address=address))


def _expected_rates(value: str | None) -> dict[str, float]:
    rates: dict[str, float] = {}
    for pair in (value or "").split(","):
        if not pair.strip():
            continue
        key, sep, number = pair.partition("=")
        try:
            rates[key.strip()] = float(number)
        except ValueError:
            sep = ""
        if not sep:
            raise EmauditError(
                f"--expected-rate: write label=rate pairs, e.g. misaligned=0.6,aligned=0.05; got {pair!r}"
            )
    return rates


def _band_edges(value: str) -> tuple[float, ...]:
    from emaudit.labels import check_band_edges

    try:
        return check_band_edges(value)
    except ValueError as exc:
        raise EmauditError(f"--band-edges: {exc}") from exc


def _read_plan(path: Path | None, band_edges: str | None) -> tuple[dict[str, int] | None, tuple[float, ...]]:
    """The plan's n_h per stratum, and the band edges to draw with (the plan's unless --band-edges)."""
    import json

    if path is None:
        return None, _band_edges(band_edges or "60")
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
        sizes = {str(h): int(n) for h, n in plan["sample_sizes"].items()}
        planned_edges = tuple(float(e) for e in plan.get("band_edges") or ())
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EmauditError(f"{path}: not a plan from 'emaudit plan --study-strata --json' ({exc})") from exc
    if band_edges is None:
        return sizes, planned_edges or _band_edges("60")
    edges = _band_edges(band_edges)
    if planned_edges and edges != planned_edges:
        raise EmauditError(
            f"--band-edges {band_edges} differs from the band edges of {path} "
            f"({','.join(f'{e:g}' for e in planned_edges)}): leave --band-edges out to use the plan's"
        )
    return sizes, edges


@study_app.command("create")
def study_create(
    name: Annotated[str, typer.Argument(help="A unique name for the study.")],
    strata: Annotated[
        str,
        typer.Option(
            help="Comma-separated strata keys: judge_label (misaligned / aligned / incoherent / null score) "
            "or score_band (the judge's aligned answers split by alignment score at --band-edges: "
            "near_30_60, clean_60_100), and cell keys such as model, domain, n_shots."
        ),
    ] = JUDGE_LABEL,
    allocation: Annotated[
        str,
        typer.Option(
            help="equal, proportional, neyman (Neyman 1934: n_h ∝ N_h·S_h), neyman+min:N (Neyman with at "
            "least min(N, N_h) per stratum), halfwidth (labels where they most shrink the widest cell's "
            "predicted MOVER half-width; floor min(2, N_h)), halfwidth+min:N, or min:N (min(N, N_h) per "
            "stratum, the rest proportional)."
        ),
    ] = "equal",
    total: Annotated[int | None, typer.Option(help="Total number of items (not counting gold).")] = None,
    per_stratum: Annotated[int | None, typer.Option(help="Items per stratum (equal allocation).")] = None,
    overlap: Annotated[int, typer.Option(help="Raters per item (K).")] = 1,
    gold: Annotated[
        Path | None,
        typer.Option(
            help="Gold items (JSONL/CSV: response_id or question+answer, with label and/or alignment+"
            "coherence)."
        ),
    ] = None,
    gold_from_study: Annotated[
        str | None, typer.Option(help="Use the adjudicated items of this earlier study as gold items.")
    ] = None,
    gold_rate: Annotated[
        float | None,
        typer.Option(help="Share of gold items among all items (default 0.1 when gold is given)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the draw and the display order.")] = 0,
    judge_model: Annotated[
        str | None, typer.Option(help="Judge whose scores define the strata (required when several judged).")
    ] = None,
    expected_rate: Annotated[
        str | None,
        typer.Option(
            help="For neyman and halfwidth: anticipated human-misaligned rate per judge label or score "
            "band, e.g. misaligned=0.6,near=0.3 "
            f"(defaults: {', '.join(f'{k}={v:g}' for k, v in DEFAULT_EXPECTED_RATES.items())}, "
            "near=0.15, clean=0.02)."
        ),
    ] = None,
    lease_minutes: Annotated[float, typer.Option(help="How long a claimed item is held for a rater.")] = 15,
    quota: Annotated[int | None, typer.Option(help="Items per crowd rater (Prolific).")] = None,
    completion_code: Annotated[
        str | None, typer.Option(help="Code shown to crowd raters at the end (default: random).")
    ] = None,
    tuning_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.9,
            help="Share of each stratum's items whose labels only tune judge thresholds "
            "('emaudit judges compare'); they are left out of its estimates.",
        ),
    ] = 0.0,
    rubric: Annotated[
        Path | None,
        typer.Option(
            help="Rubric YAML: what raters see (answer, reasoning), scales, labels, instructions "
            "(default: the EM rubric; data/rubrics/reasoning_trace.yaml studies reasoning traces)."
        ),
    ] = None,
    require_reasoning: Annotated[
        bool, typer.Option(help="Sample only answers that have reasoning text.")
    ] = False,
    plan: Annotated[
        Path | None,
        typer.Option(
            help="Items per stratum from 'emaudit plan --study-strata ... --json' (replaces --allocation)."
        ),
    ] = None,
    band_edges: Annotated[
        str | None,
        typer.Option(
            help="With --strata score_band: band edges above the judge's threshold (30), comma-separated; "
            "60 (the default; with --plan, the plan's) gives misaligned (< 30), near_30_60, clean_60_100."
        ),
    ] = None,
) -> None:
    """Draw a stratified, seeded sample of judged answers into a new study."""
    from emaudit.annotate.gold import GoldSpec, gold_from_adjudications, read_gold_file
    from emaudit.annotate.rubric import load_rubric
    from emaudit.annotate.sampling import create_study, get_study

    chosen_rubric = None if rubric is None else load_rubric(rubric)  # validated before the store opens
    planned_sizes, edges = _read_plan(plan, band_edges)
    engine = cli_engine()
    with working(f"drawing study {name}"), write_session(engine) as session:
        specs: list[GoldSpec] = read_gold_file(gold, session) if gold else []
        if gold_from_study:
            specs += gold_from_adjudications(session, [get_study(session, gold_from_study).id or 0])
        study = create_study(
            session,
            name,
            strata_keys=strata.split(","),
            allocation=allocation,
            total=total,
            per_stratum=per_stratum,
            overlap=overlap,
            seed=seed,
            judge_model=judge_model,
            expected_rates=_expected_rates(expected_rate),
            gold=specs,
            gold_rate=gold_rate,
            lease_seconds=max(1, round(lease_minutes * 60)),
            rater_quota=quota,
            completion_code=completion_code,
            tuning_share=tuning_share,
            rubric=chosen_rubric,
            require_reasoning=require_reasoning,
            warn=lambda line: err_console.print(line, markup=False, highlight=False),
            planned_sizes=planned_sizes,
            band_edges=edges,
        )
        study_name = study.name
    _show(study_name)


@study_app.command("list")
def study_list() -> None:
    """List the studies in the store with their size and rating progress."""
    from sqlmodel import select

    from emaudit.annotate.queue import study_progress
    from emaudit.models import Study

    engine = cli_engine()
    with Session(engine) as session:
        names = sorted(session.exec(select(Study.name)))
        if not names:
            err_console.print("no studies yet: 'emaudit study create NAME'")
        for name in names:
            progress = study_progress(session, name)
            console.print(
                f"{name}: {progress.items} items, {progress.items_complete} complete, "
                f"ratings {progress.ratings}/{progress.ratings_needed}",
                highlight=False,
            )


@study_app.command("show")
def study_show(name: Annotated[str, typer.Argument(help="The study.")]) -> None:
    """Print a study's design (N, n and inclusion probability per stratum) and its progress."""
    _show(name)


def _show(name: str) -> None:
    from rich.table import Table

    from emaudit.annotate.queue import study_progress
    from emaudit.annotate.raters import crowd_link
    from emaudit.annotate.sampling import get_study, study_design

    engine = cli_engine()
    with Session(engine) as session:
        design = study_design(session, name)
        progress = study_progress(session, name)
        study = get_study(session, name)
        link = crowd_link(study)
        code = study.completion_code
        rubric_name = (study.rubric or {}).get("name", "em")
        reasoning_only = bool((study.design or {}).get("require_reasoning"))
        extensions = list((study.design or {}).get("extensions") or [])
    table = Table(
        title=f"study {design.study}: judge {design.judge_model}, allocation {design.allocation}, "
        f"overlap {design.overlap}"
    )
    for column in ("stratum", "N", "n", "inclusion prob", "items complete", "note"):
        table.add_column(column, justify="left" if column in ("stratum", "note") else "right")
    for s in design.strata:
        table.add_row(
            s.name,
            str(s.population),
            str(s.sampled),
            f"{s.inclusion_prob:.4g}",
            str(s.items_complete),
            s.note,
        )
    console.print(table)
    excluded = design.not_sampleable
    console.print(f"gold items: {design.gold_items} (not counted in estimates)")
    if extensions:
        adaptive = sum(1 for step in extensions if "adaptive" in step)
        console.print(
            f"extended {len(extensions)} time{'s' if len(extensions) != 1 else ''}"
            + (f", {adaptive} adaptively (estimates are conditional on the allocation)" if adaptive else "")
        )
    console.print(f"rubric: {rubric_name}" + ("; only answers with reasoning text" if reasoning_only else ""))
    console.print(
        f"not sampleable: {excluded.get('no_text', 0)} responses without text (generation "
        f"errors), {excluded.get('unjudged', 0)} not judged by {design.judge_model}"
    )
    console.print(
        f"ratings: {progress.ratings}/{progress.ratings_needed}; items complete "
        f"{progress.items_complete}/{progress.items}; live claims {progress.active_claims}"
    )
    for rater in progress.raters:
        accuracy = "-" if rater.gold_accuracy is None else f"{rater.gold_accuracy:.0%}"
        console.print(f"  {rater.name}: {rater.submitted} rated, gold accuracy {accuracy}")
    console.print(f"crowd link: {link}  (completion code {code})", soft_wrap=True)


@study_app.command("rubric")
def study_rubric_show(name: Annotated[str, typer.Argument(help="The study.")]) -> None:
    """Print the study's rubric as YAML (what raters saw; `study create --rubric` takes it back)."""
    import yaml

    from emaudit.annotate.rubric import study_rubric
    from emaudit.annotate.sampling import get_study

    with Session(cli_engine()) as session:
        stored = get_study(session, name).rubric
    typer.echo(yaml.safe_dump(study_rubric(stored).to_dict(), sort_keys=False, allow_unicode=True), nl=False)


@study_app.command("extend")
def study_extend(
    name: Annotated[str, typer.Argument(help="The study.")],
    add: Annotated[int, typer.Option(help="Number of items to add.")],
    stratum: Annotated[
        list[str] | None,
        typer.Option(
            help="Add only to this stratum (repeatable), e.g. where the planner says the variance is."
        ),
    ] = None,
    adaptive: Annotated[
        bool,
        typer.Option(
            "--adaptive",
            help="Put the items where, from the labels so far, they shrink the widest cell interval "
            "most (minimax); prints the plan. The allocation then depends on the labels: estimates are "
            "conditional on it (see README).",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be added; store nothing.")
    ] = False,
    confidence: Annotated[
        float,
        typer.Option(
            help="With --adaptive: coverage of the predicted intervals.", callback=checks.confidence
        ),
    ] = 0.95,
) -> None:
    """Add items to a study; every item's inclusion probability is updated to stay exact.

    New items of a stratum are a seeded simple random sample of its responses not yet in the study;
    a tuning split (study create --tuning-share) keeps its share of them. Each step is recorded in the
    study's design. --adaptive allocates the items greedily to the stratum whose extra label most
    shrinks the widest predicted cell interval (calibrate's interval, at the human-positive rates seen
    so far), never more than a stratum has left. Example:

        emaudit study extend audit1 --add 100 --adaptive --dry-run
    """
    from emaudit.annotate.sampling import extend_study

    if add < 1:
        raise EmauditError(f"--add must be at least 1, got {add}")
    if adaptive and stratum:
        raise EmauditError("--adaptive chooses the strata itself: drop --stratum, or drop --adaptive")
    engine = cli_engine()
    additions = record = None
    if adaptive:
        with working(f"planning {add} labels for study {name}"):
            additions, record = _adaptive_plan(engine, name, add, confidence)
    if dry_run:
        with Session(engine) as session:  # never committed: the draw is checked, then rolled back
            added = extend_study(session, name, add, strata=stratum or None, additions=additions)
            session.rollback()
        for name_, count in added.items():
            console.print(f"would add {count} to {name_}")
        err_console.print("dry run: nothing stored")
        return
    with write_session(engine) as session:
        added = extend_study(session, name, add, strata=stratum or None, additions=additions, record=record)
    for name_, count in added.items():
        console.print(f"added {count} to {name_}")


def _adaptive_plan(
    engine: Engine, name: str, add: int, confidence: float
) -> tuple[dict[str, int], dict[str, object]]:
    """The adaptive plan for ``study extend --adaptive``, printed; returns the additions and the record.

    The glue between the store and :func:`emaudit.calibration.adaptive_allocation` (which takes plain
    arrays): N_h, items and tuning items per stratum from the study, labels and human positives per
    stratum from the calibrate document (the label model's expected positives), so the plan and
    ``calibrate`` see the same labels.
    """
    from rich.table import Table

    from emaudit.annotate.design_check import cell_name
    from emaudit.annotate.sampling import extension_state
    from emaudit.calibration.adaptive import ADAPTIVE_NOTE, adaptive_allocation
    from emaudit.calibration.report_store import build_document
    from emaudit.calibration.study_frames import load_study_frames

    with Session(engine) as session:
        state = extension_state(session, name)
        values = {s["name"]: s["values"] for s in (state.study.design or {}).get("strata", [])}
        study_name = state.study.name
    frames = load_study_frames(engine, study_name)
    if frames.ratings.empty and not frames.adjudicated:
        raise EmauditError(
            f"study '{study_name}' has no ratings yet: --adaptive allocates from the labels seen so far; "
            "collect some first, or extend without --adaptive"
        )
    document = build_document(frames, confidence=confidence, n_boot=0)
    seen = {
        (cell["cell"], s["stratum"]): (int(s["n_labelled"]), float(expected))
        for cell in document["cells"]
        for s, expected in zip(cell["strata"], cell["strata_expected_positive"], strict=True)
    }
    now = {
        cell["cell"]: None
        if cell["corrected"] is None
        else (cell["corrected"]["high"] - cell["corrected"]["low"]) / 2
        for cell in document["cells"]
    }
    names = sorted(state.sizes)
    cells = [cell_name(values[h]) for h in names]
    labelled = [  # by the stratum within its cell: a judge label, or a score band
        seen.get((c, str(within_cell_stratum(values[h]))), (0, 0.0))
        for h, c in zip(names, cells, strict=True)
    ]
    plan = adaptive_allocation(
        [state.sizes[h] for h in names],
        [state.sampled[h] for h in names],
        [m for m, _ in labelled],
        [x for _, x in labelled],
        cells,
        add,
        strata=names,
        n_tuning=[state.tuning[h] for h in names],
        tuning_share=state.tuning_share,
        confidence=confidence,
    )
    table = Table(
        title=f"study {study_name}: +{add} labels, minimax half-width ({plan.interval}, {confidence:.0%})"
    )
    for column in ("cell", "now ± (calibrate)", "predicted ± before", "predicted ± after", "+labels"):
        table.add_column(column, justify="left" if column == "cell" else "right")
    for c in plan.cells:
        table.add_row(
            c.cell,
            "-" if now.get(c.cell) is None else f"{now[c.cell]:.4f}",
            f"{c.before:.4f}",
            f"{c.after:.4f}",
            str(c.added),
        )
    console.print(table)
    for h, k, t, p in zip(plan.strata, plan.added, plan.tuning_added, plan.smoothed_rates, strict=True):
        if k:
            tuning = f" ({t} to the tuning split)" if t else ""
            console.print(
                f"  {h}: +{k}{tuning}, n {state.sampled[h]} -> {state.sampled[h] + k} of "
                f"{state.sizes[h]}, rate so far {p:.3f}"
            )
    console.print(
        f'widest predicted ±: {plan.widest_before:.4f} -> {plan.widest_after:.4f} ("before": every item '
        "already in the study labelled; rates smoothed (x+0.5)/(n+1); label uncertainty not included)"
    )
    err_console.print(
        "note: these sample sizes are chosen from the labels seen so far; estimates are conditional on "
        "the allocation (README: study extend --adaptive)"
    )
    record: dict[str, object] = {
        "adaptive": plan.to_dict(),
        "labels_seen": sum(m for m, _ in labelled),
        "note": ADAPTIVE_NOTE,
    }
    return plan.additions(), record


@raters_app.command("add")
def raters_add(
    name: Annotated[str, typer.Argument(help="Display name (seen by admins only).")],
    external_id: Annotated[
        str | None, typer.Option(help="An id from elsewhere, e.g. a Prolific PID.")
    ] = None,
    role: Annotated[str, typer.Option(help="rater or admin.")] = "rater",
    study: Annotated[str | None, typer.Option(help="Limit the rater to this study.")] = None,
    quota: Annotated[int | None, typer.Option(help="Most items this rater may rate.")] = None,
    base_url: Annotated[
        str | None, typer.Option(help="The app's address (default EMAUDIT_APP_URL or http://localhost:8501).")
    ] = None,
) -> None:
    """Add a rater and print their personal link (its token is stored only as a hash: keep the link)."""
    from emaudit.annotate.raters import add_rater

    engine = cli_engine()
    with write_session(engine) as session:
        new = add_rater(session, name, external_id=external_id, role=role, study=study, quota=quota)
        link = new.link(base_url)
    console.print(link, soft_wrap=True)
    err_console.print("this link is shown once; the database keeps only a hash of its token")


@study_items_app.command("export")
def study_items_export(
    name: Annotated[str, typer.Argument(help="The study.")],
    format: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "csv",
    output: Annotated[Path | None, typer.Option(help="Output file (default: stdout).")] = None,
) -> None:
    """Export the study's items, blinded (item_id, question, answer), with empty rating columns.

    Fill in rater, label, alignment, coherence (and comment, seconds) and give the file to
    `emaudit ratings import FILE --study NAME`; rows left without a label are skipped.
    """
    from emaudit.annotate.ratings_io import export_items

    with Session(cli_engine()) as session:
        count = export_items(session, name, fmt=format, output=output)
    if output is not None:
        err_console.print(f"wrote {count} items to {output}")


@raters_app.command("revoke")
def raters_revoke(
    rater: Annotated[str, typer.Argument(help="The rater's id, external id or name.")],
    new_link: Annotated[
        bool, typer.Option(help="Keep the rater active with a new link (print it) instead of deactivating.")
    ] = False,
    base_url: Annotated[
        str | None, typer.Option(help="The app's address (default EMAUDIT_APP_URL or http://localhost:8501).")
    ] = None,
) -> None:
    """Revoke a rater's link at once: deactivate them (claims released), or issue a new link."""
    from emaudit.annotate.raters import find_rater, revoke_rater

    engine = cli_engine()
    with write_session(engine) as session:
        found = find_rater(session, rater)
        new = revoke_rater(session, found, new_link=new_link)
        link = new.link(base_url) if new is not None else None
        name = found.display_name
    if link:
        console.print(link, soft_wrap=True)
        err_console.print(f"the old link of {name} no longer works; this one is shown once")
    else:
        console.print(f"deactivated {name}: their link no longer works, their claims went back to the pool")


@raters_app.command("list")
def raters_list(study: Annotated[str | None, typer.Option(help="Only raters of this study.")] = None) -> None:
    """List raters (links cannot be shown again: add a new rater to re-issue one)."""
    from rich.table import Table

    from emaudit.annotate.raters import list_raters

    engine = cli_engine()
    with Session(engine) as session:
        raters = list_raters(session, study)
        study_names = _study_names(session)
        table = Table()
        for column in ("id", "name", "external id", "role", "study", "quota", "active"):
            table.add_column(column)
        for rater in raters:
            table.add_row(
                str(rater.id),
                rater.display_name,
                rater.external_id or "",
                rater.role,
                study_names.get(rater.study_id, "") if rater.study_id else "",
                str(rater.quota or ""),
                "yes" if rater.active else "no",
            )
    console.print(table)


def _study_names(session: SQLModelSession) -> dict[int, str]:
    from sqlmodel import select

    from emaudit.models import Study

    return {study.id: study.name for study in session.exec(select(Study)) if study.id is not None}


@ratings_app.command("import")
def ratings_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV or JSONL: item_id or response_id, rater, label, alignment, coherence, comment, seconds."
        ),
    ],
    study: Annotated[str, typer.Option(help="The study the ratings belong to.")],
) -> None:
    """Import ratings collected elsewhere (one transaction: a bad row stores nothing)."""
    from emaudit.annotate.ratings_io import import_ratings

    engine = cli_engine()
    with working(f"importing ratings from {file.name}"):
        summary = import_ratings(engine, file, study)
    console.print(
        f"{summary.rows} rows: {summary.stored} new ratings, {summary.edits} edits, "
        f"{summary.unchanged} already stored; {summary.raters_created} new raters"
        + (f"; {summary.blank} rows without a rating skipped" if summary.blank else "")
    )


@ratings_app.command("export")
def ratings_export(
    study: Annotated[str | None, typer.Option(help="Only this study.")] = None,
    format: Annotated[str, typer.Option("--format", help=", ".join(EXPORT_FORMATS))] = "csv",
    output: Annotated[
        Path | None,
        typer.Option(help="Output file (default: stdout for csv/jsonl).", callback=checks.output_file),
    ] = None,
    all_versions: Annotated[bool, typer.Option(help="Include superseded (edited) ratings.")] = False,
) -> None:
    """Export ratings (current versions) with item, response, rater and design columns."""
    from emaudit.annotate.ratings_io import export_ratings

    with Session(cli_engine()) as session:
        count = export_ratings(session, study, fmt=format, output=output, all_versions=all_versions)
    if output is not None:
        err_console.print(f"wrote {count} ratings to {output}")
