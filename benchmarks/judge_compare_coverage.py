"""Coverage of the judge comparison when the study was drawn by another judge (issue 11).

Two judges of different quality (A: FNR 30%, FPR 1%; B: FNR 10%, FPR 5%), a study stratified
by A, B's verdicts added afterwards. For each scenario prints one JSON line: the share of seeded
replications whose 95% interval covers the truth (A's and B's corrected rates, B's with and
without its population counts, B's FNR and FPR, FNR_B - FNR_A), how often the FNR difference's
interval lies below 0, and how often the raw-rate intervals do not overlap. Target: every
coverage >= 0.93. Binomial SE of a coverage near 0.95 is 0.007 at 1,000 replications.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict

from emaudit.calibration.judge_compare_sim import two_judge_replications

SCENARIOS = {
    "prevalence_10_equal_150": {"prevalence": 0.10, "per_stratum": 150},
    "prevalence_20_a_minus_300": {"prevalence": 0.20, "per_stratum": {"A+": 100, "A-": 300}},
    "prevalence_10_a_minus_400": {"prevalence": 0.10, "per_stratum": {"A+": 100, "A-": 400}},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--quick", action="store_true", help="200 replications")
    args = parser.parse_args()
    reps = 200 if args.quick else args.reps
    for name, study in SCENARIOS.items():
        started = time.perf_counter()
        coverage = two_judge_replications(reps, seed=args.seed, **study)  # type: ignore[arg-type]
        print(
            json.dumps(
                {
                    "benchmark": "judge_compare_coverage",
                    "scenario": name,
                    **asdict(coverage),
                    "seconds": round(time.perf_counter() - started, 1),
                    "load_average": os.getloadavg()[0],
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
