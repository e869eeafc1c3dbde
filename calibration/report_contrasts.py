"""Which contrasts a paper states, read off the cell names: condition vs baseline, domain vs domain.

A *baseline* cell is one without in-context examples (``n_shots`` 0 or ``-``, or ``domain`` ``-``);
each other cell is compared with the baseline that shares its remaining fields (model, instruction,
...). Two non-baseline cells that differ only in ``domain`` give a domain-vs-domain contrast. Every
difference is of corrected rates of independent cells, with a MOVER interval
(:func:`emaudit.calibration.contrasts.mover_difference`).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from emaudit.calibration.contrasts import Difference, mover_difference
from emaudit.calibration.estimate import Estimate
from emaudit.calibration.report_view import Cell, DocumentView, Interval

_CONDITION_KEYS = ("domain", "n_shots", "seed")
"""Fields that describe the in-context condition; the rest (model, instruction, ...) define a group."""


@dataclass(frozen=True)
class Contrast:
    """``first - second`` of corrected rates."""

    kind: str  # "condition vs baseline" | "domain vs domain" | "cell vs baseline"
    first: str
    second: str
    difference: Difference


def is_baseline(cell: Cell) -> bool:
    """No in-context examples: ``n_shots`` is 0 or ``-``, or (without ``n_shots``) ``domain`` is ``-``."""
    if "n_shots" in cell.fields:
        return cell.fields["n_shots"] in ("0", "-")
    return cell.fields.get("domain") == "-"


def _group(cell: Cell) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in cell.fields.items() if k not in _CONDITION_KEYS))


def _estimate(interval: Interval) -> Estimate:
    return Estimate(interval.rate, interval.low, interval.high, interval.method, interval.confidence)


def _difference(first: Cell, second: Cell) -> Difference | None:
    a, b = first.corrected, second.corrected
    if a is None or b is None:
        return None
    estimand = a.estimand if a.estimand == b.estimand else None
    return mover_difference(_estimate(a), _estimate(b), estimand=estimand)


def study_contrasts(view: DocumentView, baseline: str | None = None) -> list[Contrast]:
    """The contrasts of ``view``'s cells; with ``baseline`` (a cell name) every cell against that one.

    Cells without a corrected rate are left out (their contrast is undefined).
    """
    cells = list(view.cells)
    out: list[Contrast] = []
    if baseline is not None:
        base = view.cell(baseline)
        for cell in cells:
            if cell.name != base.name and (d := _difference(cell, base)) is not None:
                out.append(Contrast("cell vs baseline", cell.name, base.name, d))
        return out
    bases = {_group(c): c for c in cells if is_baseline(c)}
    for cell in cells:
        base = bases.get(_group(cell))
        if base is not None and cell is not base and (d := _difference(cell, base)) is not None:
            out.append(Contrast("condition vs baseline", cell.name, base.name, d))
    others = [c for c in cells if not is_baseline(c) and "domain" in c.fields]
    for a, b in combinations(others, 2):
        same_rest = {k: v for k, v in a.fields.items() if k != "domain"} == {
            k: v for k, v in b.fields.items() if k != "domain"
        }
        if same_rest and a.fields["domain"] != b.fields["domain"] and (d := _difference(a, b)) is not None:
            out.append(Contrast("domain vs domain", a.name, b.name, d))
    return out
