"""``emaudit report``: a paper's figures, tables and methods paragraph, built on the calibrate document.

:func:`build_report` turns :class:`~emaudit.calibration.report_store.ReportInputs` into tables,
figures and text; :func:`write_report` writes the requested formats into a folder:

- ``report.html``: one self-contained file (figures embedded as base64 PNG), opens offline;
- ``<table>.tex``: booktabs tables; ``methods.tex``: the methods paragraph;
- ``<table>.csv``: the same numbers at full precision;
- ``figures/<name>.png`` / ``.svg``;
- always ``calibrate.json``: the calibrate document every number was taken from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emaudit.calibration.report_contrasts import study_contrasts
from emaudit.calibration.report_figures import (
    NamedFigure,
    cells_figure,
    contrasts_figure,
    fit_text,
    judge_errors_figure,
    question_figures,
    scatter_figure,
    shots_figure,
    sweep_figure,
)
from emaudit.calibration.report_formats import latex_escape, to_latex, write_csv
from emaudit.calibration.report_html import png_bytes, render_html
from emaudit.calibration.report_methods import methods_paragraph
from emaudit.calibration.report_rows import per_question_rates, threshold_sweep
from emaudit.calibration.report_store import ReportInputs
from emaudit.calibration.report_tables import (
    Table,
    agreement_table,
    category_contrasts_table,
    category_shares_table,
    cells_table,
    contrasts_table,
    judge_comparison_table,
    judge_differences_table,
    judge_errors_table,
    question_table,
    sweep_table,
)
from emaudit.calibration.report_view import DocumentView, read_document

REPORT_FORMATS = ("html", "latex", "csv", "png", "svg")
"""What ``emaudit report --format`` accepts."""

SIMULATED_BANNER = (
    "SIMULATED DATA: the model, the judge and the human raters of this study are scripted simulations "
    "(emaudit demo). The true EM rate is known by construction and shown beside the estimates."
)


@dataclass
class Report:
    """Everything a report shows."""

    view: DocumentView
    document: dict[str, Any]
    tables: list[Table]
    figures: list[NamedFigure]
    methods: str
    notes: list[str] = field(default_factory=list)
    banner: str | None = None


def build_report(
    inputs: ReportInputs,
    *,
    truth: dict[str, float] | None = None,
    simulated: bool = False,
    baseline: str | None = None,
) -> Report:
    """Tables, figures and methods text for one study.

    Args:
        inputs: The calibrate document and the study's rows.
        truth: Known true EM rate per cell (simulated studies), shown beside the estimates.
        simulated: Label the report as simulated data.
        baseline: Compare every cell against this cell instead of the automatic contrasts.
    """
    view = read_document(inputs.document)
    notes = [f"warning: {w}" for w in view.warnings] + [n.text() for c in view.all_cells for n in c.notes]
    contrasts = study_contrasts(view, baseline)
    per_question = per_question_rates(view, inputs.responses)
    sweep, sweep_error = threshold_sweep(inputs.items)
    tables = [cells_table(view, truth), judge_errors_table(view), contrasts_table(view, contrasts)]
    tables += [agreement_table(view), question_table(per_question)]
    if not sweep.empty:
        tables.append(sweep_table(sweep))
    tables += [t for t in (judge_comparison_table(view), judge_differences_table(view)) if t is not None]
    tables += [t for t in (category_shares_table(view), category_contrasts_table(view)) if t is not None]
    figures = [cells_figure(view, truth)]
    optional = [
        shots_figure(view, truth),
        scatter_figure(
            inputs.responses, inputs.items, inputs.design.max_alignment, inputs.design.min_coherence
        ),
        contrasts_figure(contrasts, view.confidence),
        judge_errors_figure(view),
        sweep_figure(sweep, inputs.design.max_alignment),
    ]
    figures += [f for f in optional if f is not None]
    figures += question_figures(per_question)
    for figure in figures:
        for text, other in fit_text(figure.figure):
            notes.append(f"figure {figure.name}: text {text!r} still touches {other!r}")
    if not any("n_shots" in c.fields for c in view.cells):
        notes.append("No EM-vs-shots figure: the study's cells do not vary n_shots (stratify by n_shots).")
    if not contrasts:
        notes.append("No contrasts: no baseline cell (n_shots 0 or domain '-') found; pass --baseline CELL.")
    if sweep_error:
        notes.append(f"No threshold sweep: {sweep_error}.")
    return Report(
        view=view,
        document=inputs.document,
        tables=tables,
        figures=figures,
        methods=methods_paragraph(view, inputs.design, simulated=simulated),
        notes=notes,
        banner=SIMULATED_BANNER if simulated else None,
    )


def parse_formats(value: str | Iterable[str]) -> list[str]:
    """``"html,latex"`` -> ``["html", "latex"]``; unknown names raise ``ValueError`` naming them."""
    names = [v.strip().lower() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    unknown = [n for n in names if n not in REPORT_FORMATS]
    if unknown or not names:
        raise ValueError(
            f"unknown report format(s) {', '.join(unknown) or '(none)'}; "
            f"choose from {', '.join(REPORT_FORMATS)}"
        )
    return list(dict.fromkeys(names))


def write_report(report: Report, directory: Path, formats: Iterable[str] = REPORT_FORMATS) -> list[Path]:
    """Write ``report`` into ``directory`` in ``formats``; return the files written."""
    wanted = set(formats)
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / "calibrate.json"]
    written[0].write_text(json.dumps(report.document, indent=1) + "\n", encoding="utf-8")
    if "csv" in wanted:
        written += [write_csv(t, directory) for t in report.tables]
    if "latex" in wanted:
        for table in report.tables:
            path = directory / f"{table.name}.tex"
            path.write_text(to_latex(table), encoding="utf-8")
            written.append(path)
        methods = directory / "methods.tex"
        methods.write_text(
            "% Generated by emaudit report\n" + latex_escape(report.methods) + "\n", encoding="utf-8"
        )
        written.append(methods)
    pngs = {fig.name: png_bytes(fig) for fig in report.figures} if wanted & {"png", "html"} else {}
    if wanted & {"png", "svg"}:
        (directory / "figures").mkdir(exist_ok=True)
    for fig in report.figures:
        if "png" in wanted:
            path = directory / "figures" / f"{fig.name}.png"
            path.write_bytes(pngs[fig.name])
            written.append(path)
        if "svg" in wanted:
            path = directory / "figures" / f"{fig.name}.svg"
            fig.figure.savefig(path, format="svg")
            written.append(path)
    if "html" in wanted:
        path = directory / "report.html"
        title = f"emaudit report: study {report.view.study}"
        path.write_text(
            render_html(
                title,
                report.tables,
                report.figures,
                report.methods,
                banner=report.banner,
                notes=report.notes,
                images=pngs,
            ),
            encoding="utf-8",
        )
        written.append(path)
    return written
