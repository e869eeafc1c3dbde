"""Plans from the store on the full reference data (issue 10, point 4 acceptance).

Imports the 25 judged response files of ``../shared/reference/replicating-model-organisms`` into a
scratch SQLite store as the README shows (``--model`` from the file name, ``--condition domain=...``;
the ``_S42`` re-run of Qwen2.5-14B extreme-sports as ``--condition batch=S42``, since that cell already
holds the first run), runs ``plan_from_store`` with strata ``judge_label,model,domain`` at each target
half-width, and per cell compares the predicted half-width with the mean half-width of a seeded
simulation (:func:`emaudit.calibration.simulation.simulated_halfwidth`). Target: every cell with a
judged answer gets an estimate, and every predicted half-width is within 15% of the simulated one.
The same for the score-band design of issue 10, point 2 (strata ``score_band,model,domain``, band edge 60,
``allocation="halfwidth"``). Prints one JSON line per design and half-width, then a summary line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

RESPONSES = (
    Path(__file__).resolve().parents[1].parent
    / "shared/reference/replicating-model-organisms/em_organism_dir/data/responses"
)


def import_reference(url: str) -> None:
    from emaudit.cli import main

    def run(*args: str) -> None:
        try:
            main(["--db", url, *args])
        except SystemExit as exit_:
            if exit_.code:
                raise RuntimeError(f"emaudit {' '.join(args)} exited {exit_.code}") from None

    with contextlib.redirect_stdout(io.StringIO()):  # the import summaries; this script prints JSON only
        _import_all(run)


def _import_all(run: Callable[..., None]) -> None:
    run("init")
    for path in sorted(RESPONSES.glob("*.csv")):
        model, _, rest = path.stem.partition("_")
        domain, _, seed = rest.partition("_S")
        extra = (
            ["--condition", f"batch=S{seed}"]
            if path.stem == "Qwen2.5-14B-Instruct_extreme-sports_S42"
            else []
        )
        run(
            "responses",
            "import",
            "--add-questions",
            str(path),
            "--model",
            model,
            "--condition",
            f"domain={domain}",
            *extra,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="500 replications, half-width 0.05 only")
    args = parser.parse_args()
    from emaudit.calibration.simulation import simulated_halfwidth
    from emaudit.calibration.store_plan import plan_from_store
    from emaudit.store import make_engine

    reps = 500 if args.quick else 2000
    halfwidths = [0.05] if args.quick else [0.05, 0.03, 0.02]
    start = time.perf_counter()
    worst_all = 0.0
    empty_all = 0
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'reference.db'}"
        import_reference(url)
        engine = make_engine(url)
        designs = [("judge_label", "neyman"), ("score_band", "halfwidth")]
        for (key, allocation), d in ((g, d) for g in designs for d in halfwidths):
            plan = plan_from_store(
                engine, [key, "model", "domain"], d, min_per_stratum=2, allocation=allocation
            )
            ratios = []
            for i, cell in enumerate(plan.cells):
                N = np.array([s.N for s in cell.strata])
                n = np.array([s.n for s in cell.strata])
                p = np.array([s.expected_rate for s in cell.strata])
                ratios.append(cell.predicted_halfwidth / simulated_halfwidth(N, p, n, reps=reps, seed=i))
            worst = float(max(abs(r - 1) for r in ratios))
            worst_all = max(worst_all, worst)
            empty_all += len(plan.cells_without_estimate())
            print(
                json.dumps(
                    {
                        "strata": key,
                        "allocation": allocation,
                        "halfwidth": d,
                        "cells": len(plan.cells),
                        "cells_with_judged_answers": sum(c.N > 0 for c in plan.cells),
                        "cells_without_estimate": plan.cells_without_estimate(),
                        "n_total": plan.n_total,
                        "n_judged": sum(c.N for c in plan.cells),
                        "cells_short_of_target": [c.cell for c in plan.cells if not c.reaches_target],
                        "predicted_over_simulated_min": round(min(ratios), 4),
                        "predicted_over_simulated_max": round(max(ratios), 4),
                        "worst_relative_gap": round(worst, 4),
                        "reps": reps,
                    }
                )
            )
        engine.dispose()
    print(
        json.dumps(
            {
                "summary": True,
                "passed": empty_all == 0 and worst_all <= 0.15,
                "worst_relative_gap": round(worst_all, 4),
                "cells_without_estimate": empty_all,
                "seconds": round(time.perf_counter() - start, 1),
                "load_average_1m": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
