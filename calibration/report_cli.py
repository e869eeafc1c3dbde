"""The ``emaudit report`` command (mounted by :func:`emaudit.calibration.cli.register`)."""

from __future__ import annotations

from pathlib import Path

import typer

from emaudit import console as checks
from emaudit.calibration.cli import CONFIDENCE_OPTION, N_BOOT_OPTION, SEED_OPTION
from emaudit.console import cli_engine, console, err_console
from emaudit.errors import EmauditError


def register_report(app: typer.Typer) -> None:
    """Add ``emaudit report`` to ``app``."""

    @app.command("report")
    def report(
        study: str | None = typer.Option(None, "--study", help="Study to report (default: the only one)."),
        out: Path | None = typer.Option(None, "--out", help="Folder for the report (default: report-STUDY)."),
        fmt: str = typer.Option(
            "html,latex,csv,png", "--format", help="Comma-separated: html, latex, csv, png, svg."
        ),
        baseline: str | None = typer.Option(
            None, "--baseline", help="Compare every cell with this cell (default: cells without shots)."
        ),
        cant_tell: str = typer.Option(
            "exclude", "--cant-tell", help="As for emaudit calibrate.", callback=checks.cant_tell
        ),
        confidence: float = CONFIDENCE_OPTION,
        n_boot: int = N_BOOT_OPTION,
        seed: int = SEED_OPTION,
        method: str = typer.Option(
            "two_phase", "--method", help="As for emaudit calibrate.", callback=checks.calibration_method
        ),
    ) -> None:
        """Figures, tables (LaTeX booktabs, CSV) and a methods paragraph for a paper, in one folder.

        Built on the calibrate document (the same options give the same numbers as 'emaudit calibrate
        --json', which is saved beside them as calibrate.json): the per-cell table, EM rate vs shots,
        per-question rates, the alignment-vs-coherence scatter, contrasts with MOVER intervals, judge
        error rates, the threshold sweep and agreement. report.html is one self-contained file.
        """
        from emaudit.calibration.paper_report import build_report, parse_formats, write_report
        from emaudit.calibration.report_store import load_report_inputs
        from emaudit.calibration.study_frames import resolve_study_name

        try:
            formats = parse_formats(fmt)
        except ValueError as exc:
            raise EmauditError(f"--format: {exc}") from exc
        engine = cli_engine()
        name = resolve_study_name(engine, study)
        inputs = load_report_inputs(
            engine,
            name,
            cant_tell=cant_tell,
            confidence=confidence,
            n_boot=n_boot,
            seed=seed,
            method=method,
        )
        try:
            report_ = build_report(inputs, baseline=baseline)
        except KeyError as exc:
            cells = ", ".join(c["cell"] for c in inputs.document["cells"])
            raise EmauditError(f"--baseline: no cell {baseline!r}; cells: {cells}") from exc
        directory = out or Path(f"report-{name}")
        written = write_report(report_, directory, formats)
        console.print(f"report of study {name}: {len(written)} files in {directory}", highlight=False)
        for warning in inputs.document.get("warnings") or ():
            err_console.print(f"warning: {warning}", soft_wrap=True, highlight=False, markup=False)
        if "html" in formats:
            console.print(f"open {directory / 'report.html'}", highlight=False)
