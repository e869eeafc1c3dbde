"""Coverage of the questions estimand on clustered studies (issue 9 acceptance).

Per-question EM rates vary like the reference data (per-question ICC 0.03, 0.15, 0.36 around a 10% rate);
G = 8, 24 and 48 questions x 50 answers; judge FNR 30%, FPR 1%; 60 human labels per judge stratum
(humans as truth). Both interval methods of ``emaudit.calibration.clusters`` (linearisation with CR1 and
t(G-1), and the cluster bootstrap) for the corrected and the raw judge rate, plus the responses
interval's coverage of the same population-of-questions truth. Target: >= 0.93 for G >= 24.
One JSON line per scenario, then a summary line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time

from emaudit.calibration.coverage import question_coverage

ACCEPT = 0.93


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=2000, help="replications per scenario (default 2,000)")
    parser.add_argument("--quick", action="store_true", help="200 replications per scenario")
    parser.add_argument(
        "--method", choices=["linearization", "bootstrap"], action="append", help="only these (repeat)"
    )
    args = parser.parse_args()
    methods = tuple(args.method or ("linearization", "bootstrap"))
    reps = 200 if args.quick else args.reps
    start, cpu = time.perf_counter(), time.process_time()
    rows = []
    for i, (method, G, icc) in enumerate(
        itertools.product(("linearization", "bootstrap"), (8, 24, 48), (0.03, 0.15, 0.36))
    ):
        if method not in methods:
            continue
        row = question_coverage(G, icc, reps=reps, method=method, seed=200 + i % 9)
        rows.append(row)
        print(json.dumps(row), flush=True)
    lin = [r for r in rows if r["method"] == "linearization" and r["n_questions"] >= 24]
    print(
        json.dumps(
            {
                "summary": True,
                "reps": reps,
                "seconds": round(time.perf_counter() - start, 1),
                "cpu_seconds": round(time.process_time() - cpu, 1),
                "load_average_1m": os.getloadavg()[0],
                "accept": ACCEPT,
                "min_coverage_linearization_G>=24": min(
                    (min(r["coverage_corrected"], r["coverage_raw"]) for r in lin), default=None
                ),
                "passed": bool(lin)
                and all(min(r["coverage_corrected"], r["coverage_raw"]) >= ACCEPT for r in lin),
            }
        )
    )


if __name__ == "__main__":
    main()
