"""The report's tables, each once: full-precision data (CSV) and the same numbers for display.

Every number comes from a :class:`~emaudit.calibration.report_view.DocumentView` (the calibrate
document), a contrast of its corrected rates, or (sweep, per-question raw rates) the study's own
rows, and says so in the table's note. Display strings are percentages to one decimal of the very
floats in :attr:`Table.data`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from emaudit.calibration.report_contrasts import Contrast
from emaudit.calibration.report_view import Cell, DocumentView, Interval


@dataclass(frozen=True)
class Table:
    """One table of the report.

    Attributes:
        name: File stem (``cells`` -> ``cells.csv``, ``cells.tex``).
        title: Caption.
        header: Display column names.
        rows: Display strings, one list per row (same length as ``header``).
        data: The numbers at full precision, one row per display row (written as CSV).
        note: Where the numbers come from, and what the intervals assume.
    """

    name: str
    title: str
    header: list[str]
    rows: list[list[str]]
    data: pd.DataFrame
    note: str = ""
    align: list[str] = field(default_factory=list)


def pct(value: float | None) -> str:
    """``0.2471`` -> ``"24.7"``; None -> ``"–"``."""
    return "–" if value is None or not np.isfinite(value) else f"{100 * value:.1f}"


def pct_interval(interval: Interval | None) -> str:
    """``"24.7 [18.2, 35.7]"`` (percent)."""
    if interval is None:
        return "–"
    return f"{pct(interval.rate)} [{pct(interval.low)}, {pct(interval.high)}]"


def _interval_columns(prefix: str, interval: Interval | None) -> dict[str, Any]:
    if interval is None:
        return {prefix: None, f"{prefix}_low": None, f"{prefix}_high": None}
    return {prefix: interval.rate, f"{prefix}_low": interval.low, f"{prefix}_high": interval.high}


def _labels(cell: Cell) -> str:
    return "; ".join(f"{s.stratum} {s.n_positive}/{s.n_labelled}" for s in cell.strata)


def cells_table(view: DocumentView, truth: dict[str, float] | None = None) -> Table:
    """Per cell: judged, judge rate, labels per stratum, corrected rate, method/estimand, FNR/FPR, flags.

    Args:
        view: The calibrate document.
        truth: Known true rates per cell (simulated studies only), shown in their own column.
    """
    extra = sorted({k for c in view.all_cells for k in c.extra_corrected})
    header = ["cell", "judged", "judge rate (%)", "labels (misaligned/labelled per stratum)"]
    if truth is not None:
        header.append("simulated truth (%)")
    header += ["corrected (%)", *(f"corrected, {k} (%)" for k in extra), "method, estimand"]
    header += ["FNR (%)", "FPR (%)", "flags"]
    rows, records = [], []
    for cell in view.all_cells:
        c = cell.corrected
        method = "–" if c is None else f"{c.method}, {c.estimand or 'responses'}"
        notes = "; ".join(n.message if n.stratum is None else f"{n.stratum}: {n.message}" for n in cell.notes)
        row = [cell.name, str(cell.n_judged), pct_interval(cell.judge_interval), _labels(cell) or "–"]
        record: dict[str, Any] = {"cell": cell.name, "n_judged": cell.n_judged, "judge_rate": cell.judge_rate}
        record |= {
            "judge_low": None if cell.judge_interval is None else cell.judge_interval.low,
            "judge_high": None if cell.judge_interval is None else cell.judge_interval.high,
            "labels": _labels(cell),
            "n_labelled": cell.n_labelled,
        }
        if truth is not None:
            row.append(pct(truth.get(cell.name)))
            record["simulated_truth"] = truth.get(cell.name)
        row.append(pct_interval(c))
        record |= _interval_columns("corrected", c)
        for k in extra:
            row.append(pct_interval(cell.extra_corrected.get(k)))
            record |= _interval_columns(f"corrected_{k}", cell.extra_corrected.get(k))
        row.append(method)
        record["method"] = None if c is None else c.method
        record["estimand"] = None if c is None else c.estimand
        for name in ("fnr", "fpr"):
            row.append(pct_interval(cell.judge_errors.get(name)))
            record |= _interval_columns(name, cell.judge_errors.get(name))
        row.append(notes or "–")
        record["flags"] = notes
        rows.append(row)
        records.append(record)
    return Table(
        "cells",
        f"Judge-only and error-corrected EM rates per cell, study {view.study} "
        f"({view.confidence:.0%} intervals)",
        header,
        rows,
        pd.DataFrame.from_records(records),
        note="Numbers from emaudit calibrate --json. Estimand 'responses': the rate among these judged "
        "answers (unless the document names another). Judge rate interval: Wilson, derived from the "
        "cell's counts unless the document gives one. Corrected: "
        + str(view.rules.get("interval", "two-phase estimator")),
        align=[
            "l" if h in ("cell", "method, estimand", "flags") or h.startswith("labels") else "r"
            for h in header
        ],
    )


def judge_errors_table(view: DocumentView) -> Table:
    """Sensitivity, specificity, FPR, FNR, PPV, NPV per cell with intervals."""
    names = ("sensitivity", "specificity", "fpr", "fnr", "ppv", "npv")
    header = ["cell", *(f"{n.upper() if len(n) == 3 else n} (%)" for n in names)]
    rows, records = [], []
    for cell in view.all_cells:
        rows.append([cell.name, *(pct_interval(cell.judge_errors.get(n)) for n in names)])
        record: dict[str, Any] = {"cell": cell.name}
        for n in names:
            record |= _interval_columns(n, cell.judge_errors.get(n))
        records.append(record)
    return Table(
        "judge_errors",
        f"Judge error rates against the human label ({view.confidence:.0%} intervals)",
        header,
        rows,
        pd.DataFrame.from_records(records),
        note="Numbers from emaudit calibrate --json; " + str(view.rules.get("judge_error_interval", "")),
        align=["l"] + ["r"] * len(names),
    )


def contrasts_table(view: DocumentView, contrasts: Sequence[Contrast]) -> Table:
    """Corrected differences (percentage points) with MOVER intervals."""
    header = ["contrast", "cell", "minus", "difference (pp)", "method, estimand"]
    rows, records = [], []
    for c in contrasts:
        d = c.difference
        rows.append(
            [
                c.kind,
                c.first,
                c.second,
                f"{pct(d.difference)} [{pct(d.low)}, {pct(d.high)}]",
                f"{d.method}, {d.estimand or 'responses'}",
            ]
        )
        records.append(
            {"kind": c.kind, "first": c.first, "second": c.second}
            | {"difference": d.difference, "low": d.low, "high": d.high, "method": d.method}
            | {"estimand": d.estimand}
        )
    data = pd.DataFrame.from_records(
        records,
        columns=["kind", "first", "second", "difference", "low", "high", "method", "estimand"],
    )
    return Table(
        "contrasts",
        f"Differences of corrected EM rates ({view.confidence:.0%} MOVER intervals; Newcombe 1998)",
        header,
        rows,
        data,
        note="Differences of the corrected rates in emaudit calibrate --json; cells are independent "
        "samples, so the MOVER limits combine each cell's own interval (Zou & Donner 2008).",
        align=["l", "l", "l", "r", "l"],
    )


def agreement_table(view: DocumentView) -> Table:
    """Every agreement statistic with its interval (or why it is undefined)."""
    header = ["between", "statistic", "value", "interval", "units"]
    rows, records = [], []
    for a in view.agreement:
        value = "–" if a.value is None else f"{a.value:.3f}"
        interval = "–" if a.low is None or a.high is None else f"[{a.low:.3f}, {a.high:.3f}]"
        if a.error:
            value, interval = "n/a", a.error
        rows.append([a.who.replace("_", "–"), a.statistic, value, interval, "–" if a.n is None else str(a.n)])
        records.append(
            {"who": a.who, "statistic": a.statistic, "value": a.value, "low": a.low, "high": a.high}
            | {"n": a.n, "error": a.error}
        )
    return Table(
        "agreement",
        "Agreement (human–human, judge–human)",
        header,
        rows,
        pd.DataFrame.from_records(
            records, columns=["who", "statistic", "value", "low", "high", "n", "error"]
        ),
        note="Numbers from emaudit calibrate --json. " + view.caveat,
        align=["l", "l", "r", "l", "r"],
    )


def judge_comparison_table(view: DocumentView) -> Table | None:
    """The judge x judge rows of the document (present when several judges scored the study)."""
    return _generic_table(
        "judges", "Judge × judge comparison (same human labels)", view.judge_comparison, view.confidence
    )


def judge_differences_table(view: DocumentView) -> Table | None:
    """Paired differences between judges (present with the judge comparison)."""
    return _generic_table(
        "judge_differences", "Paired differences between judges", view.judge_differences, view.confidence
    )


def category_shares_table(view: DocumentView) -> Table | None:
    """Rubric categories: design-weighted share per cell and overall, with alpha per category."""
    return _generic_table(
        "categories",
        "Rubric categories: design-weighted share per cell",
        view.category_shares,
        view.confidence,
        note=f"Share of the cell's judged responses showing the category (two-phase estimator, "
        f"{view.confidence:.0%} intervals, in %; estimand: these responses; humans are truth); "
        "alpha: Krippendorff's alpha (nominal) of the category over all items.",
    )


def category_contrasts_table(view: DocumentView) -> Table | None:
    """Differences of category shares between cells that differ in one field (MOVER intervals)."""
    return _generic_table(
        "category_contrasts",
        "Rubric categories: differences between cells (first − second)",
        view.category_contrasts,
        view.confidence,
        note=f"Differences of independent cells' shares, in points, MOVER {view.confidence:.0%} "
        "intervals (Zou & Donner 2008).",
    )


def _generic_table(
    name: str, title: str, records: Sequence[dict[str, Any]], confidence: float, *, note: str | None = None
) -> Table | None:
    """A table of rows whose values are scalars or estimate dicts (shown as ``rate [low, high]``)."""
    if not records:
        return None
    columns = list(dict.fromkeys(k for row in records for k in row))
    rows: list[list[str]] = []
    flat: list[dict[str, Any]] = []
    for record in records:
        display: list[str] = []
        data: dict[str, Any] = {}
        for key in columns:
            value = record.get(key)
            interval = Interval.read(value, confidence)
            if interval is not None:
                display.append(pct_interval(interval))
                data |= _interval_columns(key, interval)
            else:
                display.append(_show(_scalar(value)))
                data[key] = _scalar(value)
        rows.append(display)
        flat.append(data)
    return Table(
        name,
        title,
        columns,
        rows,
        pd.DataFrame.from_records(flat),
        note=note or f"Rows of the calibrate document's judge comparison ({confidence:.0%} intervals, in %).",
        align=["l"] * len(columns),
    )


def sweep_table(sweep: pd.DataFrame) -> Table:
    """Judge sensitivity/specificity when calling misaligned below each alignment threshold."""
    shown = sweep[sweep["threshold"] % 10 == 0]
    rows = [
        [f"{t:g}", pct(se), pct(sp), f"{j:.3f}"]
        for t, se, sp, j in shown[["threshold", "sensitivity", "specificity", "youden_j"]].itertuples(
            index=False
        )
    ]
    return Table(
        "threshold_sweep",
        "Judge alignment threshold sweep against the human label (design-weighted)",
        ["threshold (alignment < t)", "sensitivity (%)", "specificity (%)", "Youden's J"],
        rows,
        sweep.reset_index(drop=True),
        note="Computed by emaudit.calibration.judge_score_agreement on the study's labelled items, "
        "weighted by inverse inclusion probability (not part of the calibrate document). Every 10th "
        "threshold shown; the CSV has all.",
        align=["r", "r", "r", "r"],
    )


def question_table(per_question: pd.DataFrame) -> Table:
    """Per cell and question: responses, the judge's rate (Wilson) and a corrected rate where given."""
    rows: list[list[str]] = []
    for r in per_question.to_dict("records"):
        corrected = r["corrected"]
        rows.append(
            [
                str(r["cell"]),
                str(r["question"]),
                str(r["n"]),
                f"{pct(r['judge_rate'])} [{pct(r['judge_low'])}, {pct(r['judge_high'])}]",
                "–"
                if corrected is None or pd.isna(corrected)
                else f"{pct(corrected)} [{pct(r['corrected_low'])}, {pct(r['corrected_high'])}]",
            ]
        )
    return Table(
        "questions",
        "EM rate per question",
        ["cell", "question", "responses", "judge rate (%)", "corrected (%)"],
        rows,
        per_question.reset_index(drop=True),
        note="Judge rate per question over the study's sampling frame (Wilson interval, responses as "
        "independent). Corrected per-question rates appear when the calibrate document carries them.",
        align=["l", "l", "r", "r", "r"],
    )


def _scalar(value: Any) -> Any:
    if isinstance(value, dict):
        if "rate" in value:
            return value["rate"]
        if "value" in value:
            return value["value"]
        return str(value)
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return value


def _show(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
