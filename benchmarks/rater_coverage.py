"""Coverage of the calibrate document's corrected rate when human raters err (issue 9 acceptance).

Scenarios: prevalence 2% and 10%; judge FNR 30%, FPR 1%; N = 5,000 judged responses per replication;
60 labels from the judge-misaligned stratum and 200 from the rest; three raters rate every item, at 0%,
5% and 10% symmetric error, and of unequal quality (5%, 5%, 20%). Each replication builds the whole
calibrate document (label model "auto": Dawid-Skene with 3 ratings per item, 10 imputed label sets)
and checks ``corrected`` (rater model) and ``corrected_if_raters_perfect`` (majority vote as the
truth, the interval before issue 9) against the share of truly misaligned responses among the N.
Target: >= 0.93 everywhere for the rater model. One JSON line per scenario, then a summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from emaudit.calibration.coverage import rater_coverage

ACCEPT = 0.93
NOISE: list[float | tuple[float, ...]] = [0.1, (0.05, 0.05, 0.2), 0.05, 0.0]  # the hard ones first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=2000, help="replications per scenario (default 2,000)")
    parser.add_argument("--quick", action="store_true", help="200 replications per scenario")
    parser.add_argument("--draws", type=int, default=10, help="imputed label sets per document")
    parser.add_argument(
        "--prevalence",
        type=float,
        action="append",
        help="only these prevalences (repeat; default 0.02 and 0.1)",
    )
    args = parser.parse_args()
    reps = 200 if args.quick else args.reps
    start, cpu = time.perf_counter(), time.process_time()
    results = []
    for i, prevalence in enumerate((0.02, 0.1)):
        if args.prevalence and prevalence not in args.prevalence:
            continue
        for j, noise in enumerate(NOISE):
            r = rater_coverage(prevalence, noise, reps=reps, seed=100 + 10 * i + j, label_draws=args.draws)
            results.append(r)
            print(
                json.dumps(
                    {
                        **r.scenario,
                        "reps": r.reps,
                        "coverage": r.coverage,
                        "mean_width": round(r.mean_width, 5),
                        "perfect_raters_coverage": r.perfect_coverage,
                        "perfect_raters_mean_width": round(r.perfect_mean_width, 5),
                    }
                ),
                flush=True,
            )
    print(
        json.dumps(
            {
                "summary": True,
                "reps": reps,
                "seconds": round(time.perf_counter() - start, 1),
                "cpu_seconds": round(time.process_time() - cpu, 1),
                "load_average_1m": os.getloadavg()[0],
                "accept": ACCEPT,
                "min_coverage": min(r.coverage for r in results),
                "passed": all(r.coverage >= ACCEPT for r in results),
            }
        )
    )


if __name__ == "__main__":
    main()
