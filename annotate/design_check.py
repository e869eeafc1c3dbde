"""Which cells a stratified design leaves without an estimate, said before the study is created.

The two-phase estimator of a cell's rate (``emaudit.calibration.two_phase``) needs at least one human
label in every non-empty judge stratum of the cell: a stratum with ``N_h > 0`` and ``n_h = 0`` makes the
cell's corrected rate undefined (its weight ``N_h / N`` multiplies a rate nobody measured). Neyman
allocation with small or low-variance strata does this silently (issue 10: the README's Neyman example
on the reference data left 17 of 32 cells without an estimate).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emaudit.frames import cell_name

__all__ = ["cell_name", "cells_without_estimate", "empty_cell_warnings"]


def cells_without_estimate(
    values: Mapping[str, Mapping[str, Any]], sizes: Mapping[str, int], sample_sizes: Mapping[str, int]
) -> dict[str, list[str]]:
    """Per cell left without an estimate, its non-empty strata that get no sample, in name order.

    Args:
        values: Per stratum name, its key values (``Frame.values``).
        sizes: ``N_h`` per stratum.
        sample_sizes: ``n_h`` per stratum (missing = 0).
    """
    empty: dict[str, list[str]] = {}
    for stratum in sorted(sizes):
        if sizes[stratum] > 0 and sample_sizes.get(stratum, 0) == 0:
            empty.setdefault(cell_name(values[stratum]), []).append(stratum)
    return dict(sorted(empty.items()))


def empty_cell_warnings(
    values: Mapping[str, Mapping[str, Any]], sizes: Mapping[str, int], sample_sizes: Mapping[str, int]
) -> list[str]:
    """One line per cell without an estimate, naming the unsampled strata and what to do."""
    empty = cells_without_estimate(values, sizes, sample_sizes)
    cells = {cell_name(v) for v in values.values()}
    lines = [
        f"warning: cell {cell} gets no estimate: "
        + ", ".join(f"stratum {h} ({sizes[h]} responses) has no sampled item" for h in strata)
        for cell, strata in empty.items()
    ]
    if lines:
        lines.append(
            f"warning: {len(empty)} of {len(cells)} cells without an estimate; "
            "use --allocation neyman+min:N or min:N (a floor of min(N, N_h) per stratum), or a plan "
            "from 'emaudit plan --study-strata'"
        )
    return lines
