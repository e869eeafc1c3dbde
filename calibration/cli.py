"""Commands of the calibration component, mounted on the `emaudit` CLI."""

from __future__ import annotations

import json
import sys

import typer

from emaudit import console as checks
from emaudit.console import cli_engine, console, err_console, working
from emaudit.errors import EmauditError

# The statistics (numpy, scipy, scikit-learn) load inside the commands, so the CLI starts fast.


# Declared once: `emaudit calibrate` and `emaudit report` read the same document with the same options.
CONFIDENCE_OPTION = typer.Option(
    0.95, "--confidence", help="Two-sided coverage of every interval.", callback=checks.confidence
)
N_BOOT_OPTION = typer.Option(
    2000, "--n-boot", help="Bootstrap resamples for agreement intervals (0: none).", callback=checks.n_boot
)
SEED_OPTION = typer.Option(0, "--seed", help="Seed of the bootstrap.")


def register(app: typer.Typer) -> None:
    """Add this component's commands to the top-level app."""

    @app.command("plan")
    def plan(
        judge_rate: list[float] | None = typer.Option(
            None,
            "--judge-rate",
            "-r",
            help="Share of a cell's responses the judge calls misaligned (0-1). Repeat once per cell.",
        ),
        ppv: float | None = typer.Option(
            None, "--ppv", help="Expected share of judge-misaligned responses humans agree are misaligned."
        ),
        npv: float | None = typer.Option(
            None,
            "--npv",
            help="Expected share of judge-not-misaligned responses humans agree are not misaligned.",
        ),
        halfwidth: float = typer.Option(
            0.02,
            "--halfwidth",
            "-d",
            help="Target half-width of each cell's interval (0.02 = ±2 points).",
            callback=checks.halfwidth,
        ),
        confidence: float = typer.Option(
            0.95, "--confidence", help="Two-sided coverage of the interval.", callback=checks.confidence
        ),
        n_judged: int | None = typer.Option(
            None, "--n-judged", help="Responses judged per cell; caps labels at each stratum's size."
        ),
        min_per_stratum: int = typer.Option(
            10, "--min-per-stratum", help="At least this many labels per judge stratum."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the plan as one JSON document."),
        study_strata: str | None = typer.Option(
            None,
            "--study-strata",
            help="Plan from the store: strata keys as for 'study create' (judge_label,model,...); N and "
            "judge rates per cell are read from the judged answers, --ppv/--npv default to the study's "
            "expected rates, --min-per-stratum is a floor of min(N, N_h).",
        ),
        judge_model: str | None = typer.Option(None, "--judge-model", help="With --study-strata."),
        method: str = typer.Option(
            "two_phase",
            "--method",
            help="two_phase (default): labels per cell for its own two-phase interval. pooled: labels per "
            "judge stratum (the same in every cell) for 'calibrate --method pooled', whose shared pool of "
            "Se/Sp needs fewer labels when there are many cells; needs --n-judged; also prints Lee et al.'s "
            "(2025) optimal ratio of human-positive to human-negative calibration labels.",
            callback=checks.calibration_method,
        ),
        allocation: str = typer.Option(
            "neyman",
            "--allocation",
            help="With --study-strata: neyman (n_h ∝ N_h S_h) or halfwidth (labels where they most shrink "
            "the predicted MOVER half-width; fewer labels with score_band strata).",
        ),
        band_edges: str | None = typer.Option(
            None,
            "--band-edges",
            help="With --study-strata score_band,...: band edges above 30, comma-separated (default 60).",
        ),
    ) -> None:
        """Plan how many human labels to collect per judge stratum (Neyman allocation).

        For each cell, splits labels between the responses the judge calls misaligned and the rest so the
        corrected EM rate's 95% interval (two-phase estimator, MOVER-Wilson) reaches --halfwidth, given your
        guesses of the judge's PPV and NPV (e.g. from a pilot). Example:

            emaudit plan -r 0.05 -r 0.12 --ppv 0.8 --npv 0.99 --halfwidth 0.02
            emaudit plan --study-strata judge_label,model,domain --halfwidth 0.05
            emaudit plan --study-strata score_band,model,domain --allocation halfwidth -d 0.05
        """
        if method == "pooled":
            _plan_pooled(judge_rate, ppv, npv, halfwidth, confidence, n_judged, study_strata, as_json)
            return
        if study_strata is not None:
            from emaudit.calibration.store_plan import run_store_plan

            rates = {"misaligned": ppv} if ppv is not None else {}
            rates |= {"aligned": 1 - npv} if npv is not None else {}
            run_store_plan(
                cli_engine(),
                study_strata,
                halfwidth,
                judge_model,
                rates,
                min_per_stratum,
                confidence,
                as_json,
                allocation=allocation,
                band_edges=band_edges,
            )
            return
        if not judge_rate or ppv is None or npv is None:
            typer.echo(
                "error: give --judge-rate, --ppv and --npv, or --study-strata to plan from the store",
                err=True,
            )
            raise typer.Exit(2)
        from emaudit.calibration.errors import CalibrationInputError
        from emaudit.calibration.planner import plan_sample

        try:
            result = plan_sample(
                judge_rate,
                ppv,
                npv,
                halfwidth,
                confidence=confidence,
                n_judged=n_judged,
                min_per_stratum=min_per_stratum,
            )
        except CalibrationInputError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        if as_json:
            typer.echo(json.dumps(result.to_dict()))
            return
        from rich.table import Table

        table = Table(title=f"Labels for ±{halfwidth:g} at {confidence:.0%} (Neyman allocation)")
        for col in (
            "cell",
            "judge rate",
            "labels: judge misaligned",
            "labels: judge not misaligned",
            "total",
            "expected rate",
            "expected interval",
        ):
            table.add_column(col, justify="right")
        for c in result.cells:
            table.add_row(
                c.cell,
                f"{c.judge_rate:.3f}",
                str(c.n_judge_positive),
                str(c.n_judge_negative),
                str(c.n_total),
                f"{c.expected_rate:.3f}",
                f"[{c.expected_low:.3f}, {c.expected_high:.3f}]",
            )
        console.print(table)
        console.print(f"total labels: {result.n_total}")
        for note in result.notes:
            console.print(f"note: {note}")
        if result.n_total > checks.LARGE_PLAN_LABELS:
            err_console.print(
                f"warning: {result.n_total:,} labels is more than any rating study collects; "
                "a wider --halfwidth or fewer cells makes a plan you can carry out"
            )

    @app.command("calibrate")
    def calibrate(
        study: str | None = typer.Option(None, "--study", help="Study to calibrate (default: the only one)."),
        as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
        fmt: str = typer.Option(
            "table", "--format", help="table (terminal, default), json (the document), csv or latex."
        ),
        cant_tell: str = typer.Option(
            "exclude",
            "--cant-tell",
            help="Items whose human label is a tie or 'can't tell': exclude (default, counted), "
            "misaligned, or not_misaligned.",
            callback=checks.cant_tell,
        ),
        confidence: float = CONFIDENCE_OPTION,
        n_boot: int = N_BOOT_OPTION,
        seed: int = SEED_OPTION,
        estimand: str = typer.Option(
            "responses",
            "--estimand",
            help="What 'corrected' is about: responses (these answers) or questions (questions as "
            "clusters). Both intervals are always shown.",
        ),
        label_model: str = typer.Option(
            "auto",
            "--label-model",
            help="Human label: auto (Dawid-Skene rater model with >= 3 ratings per item, else majority "
            "vote), dawid_skene, or majority.",
        ),
        method: str = typer.Option(
            "two_phase",
            "--method",
            help="two_phase (default): each cell corrected from its own judge-stratified labels, no "
            "assumption across cells. pooled: the judge's sensitivity/specificity estimated once from "
            "every cell's labels, each cell's judge rate corrected by Rogan-Gladen with a Lang-Reiczigel "
            "interval (Lee et al. 2025); for studies with many cells; assumes the judge's error rates are "
            "the same in every cell and warns, naming the cells, where they differ.",
            callback=checks.calibration_method,
        ),
    ) -> None:
        """Error-corrected EM rates, judge error rates and rater agreement for an annotation study.

        Per cell: responses judged, the judge's rate, human labels per judge stratum, the corrected
        EM rate (two-phase estimator over the judge strata, MOVER-Wilson interval; Zou & Donner 2008)
        and the judge's sensitivity, specificity, FPR and FNR by Bayes inversion of the stratified
        sample. Then agreement: Krippendorff's alpha (nominal labels, interval alignment scores),
        Fleiss' and Cohen's kappa, human-human and judge-vs-human. --json prints the document whose
        fields are listed in emaudit.calibration.report (schema emaudit.calibrate/1).
        With 3 or more ratings per item the human label comes from a Dawid-Skene model of rater
        error and its uncertainty is in the intervals; the questions interval treats questions as
        clusters (the number of questions is printed beside it).
        """
        from emaudit.calibration.report_store import build_document
        from emaudit.calibration.study_frames import load_study_frames, resolve_study_name

        if fmt not in ("table", "json", "csv", "latex"):
            raise EmauditError(f"--format: unknown format {fmt!r}; choose table, json, csv or latex")
        if estimand not in ("responses", "questions"):
            raise typer.BadParameter("choose responses or questions", param_hint="--estimand")
        if label_model not in ("auto", "dawid_skene", "majority"):
            raise typer.BadParameter("choose auto, dawid_skene or majority", param_hint="--label-model")
        if method == "pooled" and estimand != "responses":
            raise EmauditError(
                "--method pooled estimates the responses estimand only; use --estimand responses"
            )
        engine = cli_engine()
        frames = load_study_frames(engine, resolve_study_name(engine, study))
        if frames.ratings.empty and not frames.adjudicated:
            raise EmauditError(
                f"study '{frames.study}' has no ratings yet: collect some in 'emaudit app' or load them "
                "with 'emaudit ratings import', then calibrate"
            )
        with working(f"calibrating study {frames.study} ({n_boot} bootstrap resamples)"):
            document = build_document(
                frames,
                cant_tell=cant_tell,
                confidence=confidence,
                n_boot=n_boot,
                seed=seed,
                estimand=estimand,
                label_model=label_model,
                method=method,
            )
        if as_json or fmt == "json":
            sys.stdout.write(json.dumps(document, indent=1) + "\n")
            for warning in document.get("warnings") or ():
                err_console.print(f"warning: {warning}", soft_wrap=True, highlight=False, markup=False)
            return
        from emaudit.calibration.calibrate_output import print_calibration

        print_calibration(document, fmt)

    from emaudit.calibration.report_cli import register_report

    register_report(app)


def _plan_pooled(
    judge_rate: list[float] | None,
    ppv: float | None,
    npv: float | None,
    halfwidth: float,
    confidence: float,
    n_judged: int | None,
    study_strata: str | None,
    as_json: bool,
) -> None:
    """``emaudit plan --method pooled``: labels per judge stratum for one calibration pool."""
    if study_strata is not None:
        raise EmauditError(
            "--method pooled plans from --judge-rate/--ppv/--npv/--n-judged, not --study-strata"
        )
    if not judge_rate or ppv is None or npv is None or n_judged is None:
        raise EmauditError("--method pooled needs --judge-rate (once per cell), --ppv, --npv and --n-judged")
    from emaudit.calibration.pooled_plan import plan_pooled

    result = plan_pooled(judge_rate, n_judged, ppv, npv, halfwidth, confidence)
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
        return
    from rich.table import Table

    table = Table(title=f"Pooled calibration: labels for ±{halfwidth:g} at {confidence:.0%} in every cell")
    for col in (
        "cell",
        "judge rate",
        "labels: judge misaligned",
        "labels: judge not misaligned",
        "expected rate",
        "expected ±",
        "judge-rate floor ±",
    ):
        table.add_column(col, justify="right")
    for c in result.cells:
        table.add_row(
            c.cell,
            f"{c.judge_rate:.3f}",
            str(c.n_judge_positive),
            str(c.n_judge_negative),
            f"{c.expected_rate:.3f}",
            f"{c.expected_halfwidth:.3f}",
            f"{c.judge_rate_floor:.3f}",
        )
    console.print(table)
    console.print(
        f"total labels: {result.n_total} (method pooled_rogan_gladen_lang_reiczigel; judge Se "
        f"{result.sensitivity:.3f}, Sp {result.specificity:.3f}; effective {result.n_pos_effective:.0f} "
        f"human-positive / {result.n_neg_effective:.0f} human-negative calibration labels)",
        highlight=False,
    )
    console.print(
        f"Lee et al. (2025) split for a calibration set drawn by human label: {result.lee_ratio:.2f} "
        "human-positive per human-negative label",
        highlight=False,
    )
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
