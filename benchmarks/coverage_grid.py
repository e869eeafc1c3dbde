"""Full Monte Carlo coverage grid of the two-phase MOVER intervals (issue 3; issue 10 for MOVER-Jeffreys).

Grid: prevalence 1%, 5%, 20%; judge FNR 10%, 50%; FPR 0.5%, 5%; 20 and 100 human labels per stratum;
equal and Neyman allocation; populations of 2,000 and 20,000 judged responses. Each scenario: seeded
replications (10,000; 2,000 with --quick), coverage of the rate among the N responses, mean width.
Runs MOVER-Wilson (default), MOVER with modified Jeffreys limits (the candidate default of issue 10: it
becomes the default only if it holds >= 0.945 in every cell) and the unmodified-Wilson variant, to show
where it falls short. One JSON line per scenario,
then a summary line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

from emaudit.calibration import two_phase_coverage

ACCEPT = 0.93


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2,000 replications, N = 2,000 only")
    args = parser.parse_args()
    reps = 2000 if args.quick else 10_000
    populations = [2000] if args.quick else [2000, 20_000]
    start = time.perf_counter()
    summary: dict[str, dict[str, object]] = {}
    min_coverage: dict[str, float] = {}
    mean_width: dict[str, float] = {}
    for interval in ("mover_wilson", "mover_jeffreys", "mover_wilson_plain"):
        results = []
        grid = itertools.product(
            populations, [0.01, 0.05, 0.2], [0.1, 0.5], [0.005, 0.05], [20, 100], ["equal", "neyman"]
        )
        for i, (N, prev, fnr, fpr, n, alloc) in enumerate(grid):
            r = two_phase_coverage(
                prev,
                fnr,
                fpr,
                n,
                alloc,
                N=N,
                reps=reps,
                seed=1000 + i,
                interval=interval,
            )
            results.append(r)
            print(
                json.dumps(
                    {
                        **r.scenario,
                        "coverage": r.coverage,
                        "mc_se": round(r.mc_se, 4),
                        "mean_width": round(r.mean_width, 5),
                        "mean_labels": r.mean_labels,
                        "reps": reps,
                    }
                )
            )
        below = [r.scenario for r in results if r.coverage < ACCEPT]
        min_coverage[interval] = min(r.coverage for r in results)
        mean_width[interval] = sum(r.mean_width for r in results) / len(results)
        summary[interval] = {
            "scenarios": len(results),
            "min_coverage": min(r.coverage for r in results),
            "mean_coverage": round(sum(r.coverage for r in results) / len(results), 4),
            "mean_width": round(sum(r.mean_width for r in results) / len(results), 5),
            "below_0.93": below,
        }
    print(
        json.dumps(
            {
                "summary": True,
                "reps": reps,
                "seconds": round(time.perf_counter() - start, 2),
                "accept": ACCEPT,
                "passed": not summary["mover_wilson"]["below_0.93"],
                "jeffreys_min_coverage": min_coverage["mover_jeffreys"],
                "jeffreys_holds_0.945": min_coverage["mover_jeffreys"] >= 0.945,
                "jeffreys_width_ratio": round(mean_width["mover_jeffreys"] / mean_width["mover_wilson"], 4),
                **summary,
            }
        )
    )


if __name__ == "__main__":
    main()
