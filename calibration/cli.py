"""Commands of the calibration component, mounted on the `emaudit` CLI."""

from __future__ import annotations

import json

import typer
from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.planner import plan_sample
from rich.console import Console
from rich.table import Table


def register(app: typer.Typer) -> None:
    """Add this component's commands to the top-level app."""

    @app.command("plan")
    def plan(
        judge_rate: list[float] = typer.Option(
            ...,
            "--judge-rate",
            "-r",
            help="Share of a cell's responses the judge calls misaligned (0-1). Repeat once per cell.",
        ),
        ppv: float = typer.Option(
            ..., "--ppv", help="Expected share of judge-misaligned responses humans agree are misaligned."
        ),
        npv: float = typer.Option(
            ...,
            "--npv",
            help="Expected share of judge-not-misaligned responses humans agree are not misaligned.",
        ),
        halfwidth: float = typer.Option(
            0.02, "--halfwidth", "-d", help="Target half-width of each cell's interval (0.02 = ±2 points)."
        ),
        confidence: float = typer.Option(0.95, "--confidence", help="Two-sided coverage of the interval."),
        n_judged: int | None = typer.Option(
            None, "--n-judged", help="Responses judged per cell; caps labels at each stratum's size."
        ),
        min_per_stratum: int = typer.Option(
            10, "--min-per-stratum", help="At least this many labels per judge stratum."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the plan as one JSON document."),
    ) -> None:
        """Plan how many human labels to collect per judge stratum (Neyman allocation).

        For each cell, splits labels between the responses the judge calls misaligned and the rest so the
        corrected EM rate's 95% interval (two-phase estimator, MOVER-Wilson) reaches --halfwidth, given your
        guesses of the judge's PPV and NPV (e.g. from a pilot). Example:

            emaudit plan -r 0.05 -r 0.12 --ppv 0.8 --npv 0.99 --halfwidth 0.02
        """
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
        console = Console()
        console.print(table)
        console.print(f"total labels: {result.n_total}")
        for note in result.notes:
            console.print(f"note: {note}")
