"""Coverage of the pooled calibration (``calibrate --method pooled``, issue 10 point 3): one JSON line.

Grid (as ``coverage_grid.py``): prevalence 1%, 5%, 20%; judge FNR 10%, 50%; FPR 0.5%, 5%; 20 and 100
human labels per (cell, judge stratum); 2,000 and 20,000 judged responses per cell. Each scenario is a
study of 8 cells whose prevalences differ (6 at the grid's prevalence, one at half, one at twice it) and
whose judge has the same error rates in every cell (transfer holds). Seeded replications (10,000; 2,000
with --quick, N = 2,000 only); the coverage of the rate among each cell's responses is measured *per
cell*, and the scenario's coverage is its lowest cell's. The acceptance is >= 0.93 in every scenario.
Beside it: the mean width against the per-cell two-phase (MOVER-Wilson) interval on the same labels.

Then the transfer test: the share of studies in which the warning fires and names the cell whose judge
differs (one cell with FPR 15% where the others have 2%, or FNR 60% where the others have 20%, at
prevalence 5% and 20%; 40 labels per stratum), and the share of false warnings when transfer holds
(family-wise level 5% by design). A sensitivity that differs is hard to see at low prevalence: the
cell's own sensitivity rests on the few human positives among its judge-negative labels.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time

import numpy as np

from emaudit.calibration.pooled_sim import pooled_coverage

ACCEPT = 0.93


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2,000 replications, N = 2,000 only")
    parser.add_argument("--verbose", action="store_true", help="one line per scenario on stderr")
    args = parser.parse_args()
    reps = 2000 if args.quick else 10_000
    transfer_reps = 40 if args.quick else 200
    populations = [2000] if args.quick else [2000, 20_000]
    start = time.perf_counter()
    rows = []
    grid = itertools.product(populations, [0.01, 0.05, 0.2], [0.1, 0.5], [0.005, 0.05], [20, 100])
    for i, (N, prev, fnr, fpr, n) in enumerate(grid):
        prevalences = [prev] * 6 + [prev / 2, prev * 2]
        r = pooled_coverage(prevalences, 1 - fnr, fpr, N, n, reps=reps, seed=2000 + i)
        row = {
            "N": N,
            "prevalence": prev,
            "fnr": fnr,
            "fpr": fpr,
            "n_per_stratum": n,
            "min_cell_coverage": round(r.min_coverage, 4),
            "coverage_at_prevalence": round(float(np.mean(r.coverage[:6])), 4),
            "mc_se": round(r.mc_se, 4),
            "refused": r.refused,
            "mean_width": round(float(np.mean(r.mean_width)), 4),
            "two_phase_width": round(float(np.mean(r.two_phase_width)), 4),
        }
        rows.append(row)
        if args.verbose:
            print(json.dumps(row), file=sys.stderr)
    transfer = {}
    for name, prev, se, fpr in (
        ("fpr_differs", 0.05, 0.8, [0.02] * 7 + [0.15]),
        ("fnr_differs", 0.05, [0.8] * 7 + [0.4], 0.02),
        ("fnr_differs_prevalence_20pct", 0.2, [0.8] * 7 + [0.4], 0.02),
        ("holds", 0.05, 0.8, 0.02),
    ):
        r = pooled_coverage(
            [prev] * 8, se, fpr, 2000, 40, reps=transfer_reps, seed=7, transfer_reps=transfer_reps
        )
        transfer[name] = {
            "warning_rate": r.warning_rate,
            "named_the_differing_cell": None if name == "holds" else r.flagged_rate[7],
            "other_cells_named": round(float(np.mean(r.flagged_rate[:7])), 3),
            "min_cell_coverage": round(r.min_coverage, 3),
        }
    min_coverage = min(r["min_cell_coverage"] for r in rows)
    at_1pct = min(r["min_cell_coverage"] for r in rows if r["prevalence"] == 0.01)
    print(
        json.dumps(
            {
                "benchmark": "pooled_coverage",
                "method": "pooled_rogan_gladen_lang_reiczigel",
                "reps": reps,
                "cells_per_study": 8,
                "scenarios": len(rows),
                "min_cell_coverage": min_coverage,
                "min_cell_coverage_at_prevalence_1pct": at_1pct,
                "accept": ACCEPT,
                "passes": min_coverage >= ACCEPT,
                "median_width_ratio_pooled_vs_two_phase": round(
                    float(np.median([r["mean_width"] / r["two_phase_width"] for r in rows])), 3
                ),
                "transfer_test": transfer,
                "transfer_reps": transfer_reps,
                "grid": rows,
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
