"""``emaudit calibrate`` output: one block per cell in the terminal (names whole), or CSV/LaTeX.

All formats read the document through :mod:`emaudit.calibration.report_view`, so the terminal, the
CSV, the LaTeX table and ``emaudit report`` show the same numbers.
"""

from __future__ import annotations

import sys
from typing import Any

from emaudit.calibration.report_formats import to_latex
from emaudit.calibration.report_tables import cells_table, pct_interval
from emaudit.calibration.report_view import DocumentView, read_document
from emaudit.console import console, err_console


def print_calibration(document: dict[str, Any], fmt: str = "table") -> None:
    """Print ``document`` as ``table`` (terminal blocks), ``csv`` or ``latex`` (the per-cell table)."""
    view = read_document(document)
    if fmt in ("csv", "latex"):
        # The table names the method per row (and the assumptions in its note); the warnings go to
        # stderr so that stdout stays a clean CSV / LaTeX file.
        table = cells_table(view)
        sys.stdout.write(table.data.to_csv(index=False) if fmt == "csv" else to_latex(table))
        for warning in view.warnings:
            err_console.print(f"warning: {warning}", soft_wrap=True, highlight=False, markup=False)
        return
    _print_blocks(view)


def _say(text: str) -> None:
    # soft_wrap: a long cell name is printed whole and left to the terminal to wrap, never cut.
    console.print(text, soft_wrap=True, highlight=False, markup=False)


def _print_blocks(view: DocumentView) -> None:
    console.print(
        f"[bold]Study {view.study}: corrected EM rates ({view.confidence:.0%} intervals)[/bold]",
        soft_wrap=True,
        highlight=False,
    )
    if view.pooled is not None:
        _print_pool(view.pooled)
    # The same words as `emaudit rates`, whose `rate` divides by scored responses only.
    _say(
        "judge rate = judge-misaligned / judged (scored + null scores); 'emaudit rates' shows "
        "misaligned / scored as 'rate' and this one as 'rate_of_judged' in --json"
    )
    for cell in view.all_cells:
        console.print(
            f"\n[bold]{'overall' if cell.is_overall else 'cell ' + cell.name}[/bold]",
            soft_wrap=True,
            highlight=False,
            markup=True,
        )
        corrected = cell.corrected
        how = (
            ""
            if corrected is None
            else f" ({corrected.method}, estimand {corrected.estimand or 'responses'})"
        )
        _say(
            f"  judged {cell.n_judged}   judge rate {pct_interval(cell.judge_interval)}%   "
            f"corrected {pct_interval(corrected)}%{how}"
        )
        for name, extra in cell.extra_corrected.items():
            over = f", {cell.n_questions} questions" if name == "questions" and cell.n_questions else ""
            _say(f"  corrected ({name}): {pct_interval(extra)}% ({extra.method}{over})")
        split = cell.human_labels
        if split.get("n_non_unanimous"):
            _say(
                f"  human labels: {split['n_non_unanimous_not_adjudicated']} of {split['n_non_unanimous']} "
                "non-unanimous items not adjudicated"
            )
        if cell.strata:
            _say(
                "  labels (misaligned/labelled): "
                + ", ".join(f"{s.stratum} {s.n_positive}/{s.n_labelled} of N={s.N}" for s in cell.strata)
            )
        if cell.judge_errors:
            _say(
                "  judge: "
                + ", ".join(
                    f"{label} {pct_interval(cell.judge_errors.get(key))}%"
                    for key, label in (
                        ("sensitivity", "sensitivity"),
                        ("specificity", "specificity"),
                        ("fpr", "FPR"),
                        ("fnr", "FNR"),
                    )
                    if key in cell.judge_errors
                )
            )
        for note in cell.notes:
            where = f"stratum {note.stratum}: " if note.stratum else ""
            _say(f"  note: {where}{note.message}")
    labels = view.human_labels
    _say(
        f"\nhuman labels: {labels.get('n_decided', 0)} decided, {labels.get('n_cant_tell', 0)} can't tell / "
        f"ties, {labels.get('n_adjudicated', 0)} adjudicated, "
        f"{labels.get('n_gold_excluded', 0)} gold excluded"
    )
    model = view.human_label_model
    if isinstance(model, dict):
        _say(f"human label model: {model.get('model')} ({model.get('description', '')})")
        if model.get("note"):
            _say(f"note: {model['note']}")
    elif model:
        _say(f"human label model: {model}")
    for row in view.agreement:
        if row.error:
            _say(f"{row.who} {row.statistic}: n/a ({row.error})")
        elif row.value is not None:
            ci = "" if row.low is None or row.high is None else f" [{row.low:.2f}, {row.high:.2f}]"
            _say(f"{row.who} {row.statistic}: {row.value:.3f}{ci}")
    _say(view.caveat)
    for warning in view.warnings:
        console.print(f"[bold]warning:[/bold] {warning}", soft_wrap=True, highlight=False, markup=True)


def _print_pool(pooled: dict[str, Any]) -> None:
    _say(
        f"method: pooled calibration across cells ({pooled.get('method')}); estimand {pooled.get('estimand')}"
    )
    for assumption in pooled.get("assumptions", []):
        _say(f"  assumes {assumption}")
    pool = pooled.get("pool")
    if pool is None:
        _say(f"  pool: n/a ({pooled.get('error', 'not computed')})")
        return
    se, sp = pool["sensitivity"], pool["specificity"]
    _say(
        f"  pooled judge sensitivity {se['rate']:.3f} [{se['low']:.3f}, {se['high']:.3f}], specificity "
        f"{sp['rate']:.3f} [{sp['low']:.3f}, {sp['high']:.3f}] from {pool['n_labelled']:g} labels in "
        f"{len(pooled.get('pool_cells', []))} cells (effective {pool['n_pos_effective']:.1f} positive / "
        f"{pool['n_neg_effective']:.1f} negative calibration labels)"
    )
    test = pooled.get("transfer_test") or {}
    if test.get("note"):
        _say(f"  transfer test: {test['note']}")
