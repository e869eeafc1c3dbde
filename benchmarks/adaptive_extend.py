"""``study extend --adaptive`` vs an equal split of the same labels (issue 10, point 4b).

Per scenario (cells of two judge strata, a pilot of labels per stratum, then ``add`` more), seeded
replications of :func:`emaudit.calibration.adaptive_extension_replications`: a finite population of
human labels per replication, the pilot drawn without replacement, the extension either where the
adaptive minimax plan puts it (from the pilot's labels) or split equally over the strata, then each
cell's interval as ``calibrate`` reports it (two-phase, MOVER-Wilson, finite-population corrected).
Reports the mean widest half-width over cells for both designs and their ratio, the coverage of every
cell (target >= 0.93), the largest bias of the adaptive design (the allocation depends on the pilot's
labels, so the estimate is conditional on it), and the plan's predicted widest half-width beside the
realised one. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

SCENARIOS = {
    # The test's scenario: three cells, one with a small, uncertain judge-positive stratum.
    "three_cells": {
        "N": [60, 940, 200, 800, 30, 470],
        "rates": [0.7, 0.03, 0.85, 0.01, 0.5, 0.05],
        "pilot": 10,
        "add": 120,
    },
    # Eight cells at 2-10% prevalence, judge rates 3-15%: the shape of a model x domain audit.
    "eight_cells": {
        "N": [30, 970, 60, 940, 100, 900, 150, 850, 45, 455, 80, 420, 20, 480, 75, 425],
        "rates": [0.6, 0.01, 0.7, 0.02, 0.8, 0.03, 0.6, 0.04, 0.5, 0.02, 0.9, 0.01, 0.4, 0.05, 0.7, 0.03],
        "pilot": 10,
        "add": 400,
    },
    # Prevalence near 1%: few positives anywhere.
    "prevalence_1pct": {
        "N": [10, 990, 20, 980, 15, 1985],
        "rates": [0.5, 0.005, 0.4, 0.003, 0.6, 0.006],
        "pilot": 10,
        "add": 300,
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--quick", action="store_true", help="200 replications")
    args = parser.parse_args()
    from emaudit.calibration import adaptive_extension_replications

    reps = 200 if args.quick else args.reps
    out: dict[str, object] = {"benchmark": "adaptive_extend", "reps": reps, "seed": args.seed}
    start = time.process_time()
    rows = {}
    for name, s in SCENARIOS.items():
        cells = [f"c{j // 2}" for j in range(len(s["N"]))]
        result = adaptive_extension_replications(
            s["N"], s["rates"], cells, s["pilot"], s["add"], reps=reps, seed=args.seed
        )
        adaptive, equal = result.widest_halfwidth["adaptive"], result.widest_halfwidth["equal"]
        rows[name] = {
            "add": s["add"],
            "pilot_per_stratum": s["pilot"],
            "widest_halfwidth_adaptive": round(adaptive, 5),
            "widest_halfwidth_equal": round(equal, 5),
            "ratio": round(adaptive / equal, 4),
            "predicted_widest_adaptive": round(result.predicted_widest, 5),
            "min_coverage_adaptive": round(min(result.coverage["adaptive"]), 4),
            "min_coverage_equal": round(min(result.coverage["equal"]), 4),
            "max_abs_bias_adaptive": round(max(abs(b) for b in result.bias["adaptive"]), 5),
            "max_abs_bias_equal": round(max(abs(b) for b in result.bias["equal"]), 5),
            "bias_adaptive": [round(b, 5) for b in result.bias["adaptive"]],
            "mean_added_adaptive": [round(v, 1) for v in result.mean_added["adaptive"]],
        }
    out["scenarios"] = rows
    out["target_coverage_met"] = all(r["min_coverage_adaptive"] >= 0.93 for r in rows.values())
    out["adaptive_narrower_everywhere"] = all(r["ratio"] < 1 for r in rows.values())
    out["cpu_seconds"] = round(time.process_time() - start, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
