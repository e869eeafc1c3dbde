"""Speed of the full `calibrate` document on a large simulated study.

1,000,000 judged responses in 200 cells, 10,000 human ratings from 3 raters (about 3,333 items rated
by all three), agreement intervals with 2,000 bootstrap resamples. Target: under 10 s on 2 cores.
Prints one JSON line per run plus a summary line. ``--quick`` runs a tenth of the size.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from emaudit.calibration import calibrate_document, simulate

TARGET_SECONDS = 10.0


def build_inputs(
    n_responses: int, n_cells: int, n_ratings: int, k: int, seed: int
) -> tuple[pd.DataFrame, ...]:
    """Simulated judged population, study items and ratings, as the store adapter would pass them."""
    rng = np.random.default_rng(seed)
    prevalence = rng.uniform(0.005, 0.2, n_cells)
    study = simulate(n_responses // n_cells, prevalence, None, None, score_separation=3.0, seed=rng)
    stratum = np.where(study.judge, "misaligned", "aligned")
    judged = pd.DataFrame({"cell": study.cell, "stratum": stratum})
    n_items = -(-n_ratings // k)  # ceil: every item gets k ratings
    per_stratum = np.full(2 * n_cells, n_items // (2 * n_cells))
    per_stratum[: n_items - per_stratum.sum()] += 1
    items = study.sample(per_stratum.reshape(n_cells, 2), rng)
    ratings = study.rate_items(items, rng, k=k, rater_noise=0.08, cant_tell_rate=0.02)
    ratings = ratings.iloc[:n_ratings]
    item_frame = pd.DataFrame(
        {
            "item": items,
            "cell": study.cell[items],
            "stratum": stratum[items],
            "judge_alignment": np.round(study.judge_score[items], 1)
            if study.judge_score is not None
            else np.nan,
        }
    )
    return judged, item_frame, ratings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    n_responses, n_cells, n_ratings = 1_000_000 // scale, 200 // (scale if scale > 1 else 1), 10_000 // scale
    judged, items, ratings = build_inputs(n_responses, n_cells, n_ratings, 3, args.seed)
    start = time.perf_counter()
    doc = calibrate_document(judged, items, ratings, n_boot=2000, seed=args.seed)
    seconds = time.perf_counter() - start
    json.dumps(doc)  # the document must serialise
    ok_cells = sum(c["corrected"] is not None for c in doc["cells"])
    print(
        json.dumps(
            {
                "scenario": "calibrate_document",
                "n_responses": len(judged),
                "n_cells": n_cells,
                "n_ratings": len(ratings),
                "n_items": len(items),
                "raters": 3,
                "n_boot": 2000,
                "seconds": round(seconds, 3),
                "cells_with_rate": ok_cells,
                "overall_rate": doc["overall"]["corrected"]["rate"],
                "alpha_nominal": doc["agreement"]["human_human"]["alpha_nominal"].get("value"),
            }
        )
    )
    print(
        json.dumps(
            {
                "summary": True,
                "seconds": round(seconds, 3),
                "target_seconds": TARGET_SECONDS,
                "passed": seconds < TARGET_SECONDS,
            }
        )
    )


if __name__ == "__main__":
    main()
