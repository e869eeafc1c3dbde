"""Rows the figures need beyond the calibrate document: per-question rates and the threshold sweep."""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.judge_scores import judge_score_agreement
from emaudit.calibration.report_view import DocumentView

PER_QUESTION_COLUMNS = [
    "cell",
    "question",
    "n",
    "n_judge_positive",
    "judge_rate",
    "judge_low",
    "judge_high",
    "corrected",
    "corrected_low",
    "corrected_high",
]


def per_question_rates(view: DocumentView, responses: pd.DataFrame) -> pd.DataFrame:
    """Per (cell, question): the judge's rate with a Wilson interval, and the corrected rate if given.

    When the document carries ``questions`` for a cell its rows are used as they are; otherwise the
    judge rate is computed from the study's frame with the document's rule (share of responses in a
    judge-positive stratum).
    """
    positive = set(view.rules.get("judge_positive_strata", ["misaligned"]))
    frames = []
    from_document = {cell.name for cell in view.cells if cell.questions}
    for cell in view.cells:
        for q in cell.questions:
            frames.append(
                {
                    "cell": cell.name,
                    "question": q.question,
                    "n": q.n,
                    "n_judge_positive": None,
                    "judge_rate": None if q.judge is None else q.judge.rate,
                    "judge_low": None if q.judge is None else q.judge.low,
                    "judge_high": None if q.judge is None else q.judge.high,
                    "corrected": None if q.corrected is None else q.corrected.rate,
                    "corrected_low": None if q.corrected is None else q.corrected.low,
                    "corrected_high": None if q.corrected is None else q.corrected.high,
                }
            )
    rest = responses[~responses["cell"].isin(from_document)]
    if not rest.empty:
        grouped = (
            rest.assign(pos=rest["judge_label"].isin(positive))
            .groupby(["cell", "question"], sort=True)["pos"]
            .agg(n="size", n_judge_positive="sum")
            .reset_index()
        )
        low, high = proportion_confint(
            grouped["n_judge_positive"], grouped["n"], alpha=1 - view.confidence, method="wilson"
        )
        grouped["judge_rate"] = grouped["n_judge_positive"] / grouped["n"]
        grouped["judge_low"], grouped["judge_high"] = np.asarray(low), np.asarray(high)
        for col in ("corrected", "corrected_low", "corrected_high"):
            grouped[col] = np.nan
        frames.extend({str(k): v for k, v in row.items()} for row in grouped.to_dict("records"))
    return pd.DataFrame.from_records(frames, columns=PER_QUESTION_COLUMNS)


def threshold_sweep(items: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """Sensitivity/specificity of ``judge alignment < t`` vs the human label, t = 0..100 (weighted).

    Returns the sweep (empty when undefined) and, when undefined, why.
    """
    usable = items.dropna(subset=["human", "judge_alignment", "weight"])
    if usable.empty:
        return pd.DataFrame(columns=["threshold", "sensitivity", "specificity", "youden_j"]), (
            "no labelled items with a judge alignment score"
        )
    try:
        result = judge_score_agreement(
            usable["judge_alignment"].to_numpy(dtype=np.float64),
            usable["human"].to_numpy(dtype=np.float64),
            weights=usable["weight"].to_numpy(dtype=np.float64),
        )
    except CalibrationInputError as exc:
        return pd.DataFrame(columns=["threshold", "sensitivity", "specificity", "youden_j"]), str(exc)
    return pd.DataFrame([p.__dict__ for p in result.sweep]), None
