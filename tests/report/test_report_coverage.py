"""The report's corrected rates (cells table, read from the calibrate document) cover a known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd

from emaudit.calibration.report import calibrate_document
from emaudit.calibration.report_tables import cells_table
from emaudit.calibration.report_view import read_document


def _study(rng: np.random.Generator, prevalence: dict[str, float]) -> tuple[pd.DataFrame, ...]:
    """Per cell 400 responses, judge FNR 30% / FPR 4%, 25 labels per judge stratum, one truthful rater."""
    judged, items, ratings, truth = [], [], [], {}
    item = 0
    for cell, p in prevalence.items():
        y = rng.random(400) < p
        judge = np.where(y, rng.random(400) > 0.30, rng.random(400) < 0.04)
        truth[cell] = y.mean()
        strata = np.where(judge, "misaligned", "aligned")
        judged.append(pd.DataFrame({"cell": cell, "stratum": strata}))
        for stratum in ("misaligned", "aligned"):
            members = np.flatnonzero(strata == stratum)
            for index in rng.choice(members, size=min(25, len(members)), replace=False):
                items.append({"item": item, "cell": cell, "stratum": stratum})
                ratings.append({"item": item, "rater": 1, "label": "misaligned" if y[index] else "aligned"})
                item += 1
    return pd.concat(judged), pd.DataFrame(items), pd.DataFrame(ratings), pd.Series(truth)


def test_cells_table_corrected_intervals_cover_the_truth_in_a_seeded_simulation() -> None:
    """120 studies x 3 cells; the truth is each cell's share among its 400 responses (the estimand).

    360 intervals: the binomial SE of 95% coverage is 1.15 points; require >= 92% (nominal 95%)."""
    rng = np.random.default_rng(2026)
    covered = total = 0
    for _ in range(120):
        judged, items, ratings, truth = _study(
            rng, {"model=org/a": 0.20, "model=org/b": 0.05, "model=org/c": 0.10}
        )
        table = cells_table(read_document(calibrate_document(judged, items, ratings, n_boot=0)))
        rows = table.data.set_index("cell").loc[truth.index]
        covered += int(((rows["corrected_low"] <= truth) & (truth <= rows["corrected_high"])).sum())
        total += len(truth)
    assert covered / total >= 0.92
