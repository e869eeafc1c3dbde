"""Coverage grid of the score-band design (issue 10, point 2): bands + half-width allocation + two-phase.

Grid (benchmarks/coverage_grid.py style): prevalence 1%, 5%, 20%; judge FNR 10%, 50%; FPR 0.5%, 5%;
60 and 300 human labels in all (20 and 100 per band on average over the three bands misaligned /
near_30_60 / clean_60_100); the two score scenarios of benchmarks/label_efficiency.py (informative:
missed positives 30 + Exp(10), clean answers from the low-EM reference files; weak: 30 + Exp(25), clean
from all reference files); populations of 2,000 and 20,000 judged responses. The allocation is
``halfwidth_allocation`` with the design values and a floor of 2 per band; the interval is the
finite-population-corrected MOVER-Wilson (default) and MOVER-Jeffreys. Each cell: seeded replications
(10,000; 2,000 with --quick), coverage of the human-label rate among the N responses. Target: >= 0.93 in
every cell. One JSON line per cell, then a summary line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

from emaudit.calibration.score_model import score_band_coverage

ACCEPT = 0.93
SCORES = {"informative": (10.0, "low_em"), "weak": (25.0, "all")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2,000 replications, N = 2,000 only")
    args = parser.parse_args()
    reps = 2000 if args.quick else 10_000
    populations = [2000] if args.quick else [2000, 20_000]
    start = time.perf_counter()
    summary: dict[str, dict[str, object]] = {}
    for interval in ("mover_wilson", "mover_jeffreys"):
        results = []
        grid = itertools.product(
            populations, [0.01, 0.05, 0.2], [0.1, 0.5], [0.005, 0.05], [60, 300], list(SCORES)
        )
        for i, (N, prev, fnr, fpr, total, score) in enumerate(grid):
            miss_scale, clean = SCORES[score]
            r = score_band_coverage(
                prev,
                fnr,
                fpr,
                total,
                N=N,
                reps=reps,
                seed=3000 + i,
                miss_scale=miss_scale,
                clean=clean,  # type: ignore[arg-type]
                interval=interval,  # type: ignore[arg-type]
            )
            results.append(r)
            print(
                json.dumps(
                    {
                        **r.scenario,
                        "score_scenario": score,
                        "coverage": r.coverage,
                        "mc_se": round(r.mc_se, 4),
                        "mean_width": round(r.mean_width, 5),
                        "mean_labels": r.mean_labels,
                        "reps": reps,
                    }
                )
            )
        summary[interval] = {
            "cells": len(results),
            "min_coverage": min(r.coverage for r in results),
            "min_coverage_at_prev_1pct": min(r.coverage for r in results if r.scenario["prevalence"] == 0.01),
            "mean_coverage": round(sum(r.coverage for r in results) / len(results), 4),
            "below_0.93": [r.scenario for r in results if r.coverage < ACCEPT],
        }
    print(
        json.dumps(
            {
                "summary": True,
                "reps": reps,
                "seconds": round(time.perf_counter() - start, 2),
                "accept": ACCEPT,
                "passed": not summary["mover_wilson"]["below_0.93"],
                **summary,
            }
        )
    )


if __name__ == "__main__":
    main()
