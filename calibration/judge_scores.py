"""The continuous view of the judge: its 0-100 score against the human's score and label."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from emaudit.calibration.errors import CalibrationInputError, UndefinedStatisticError


@dataclass(frozen=True)
class ThresholdPoint:
    """Judge performance when it calls a response misaligned below ``threshold``."""

    threshold: float
    sensitivity: float
    specificity: float
    youden_j: float


@dataclass(frozen=True)
class ScoreAgreement:
    """Judge score vs human judgement.

    Attributes:
        n: Items compared.
        spearman: Spearman rank correlation of judge and human scores (None without human scores).
        mae: Mean absolute difference of the scores in points (None without human scores).
        roc_auc: AUC of ``-judge_score`` for the human misaligned label (scikit-learn).
        best_threshold: The threshold with the largest Youden's J against the human label.
        sweep: Sensitivity/specificity at each threshold tried.
    """

    n: int
    spearman: float | None
    mae: float | None
    roc_auc: float
    best_threshold: ThresholdPoint
    sweep: tuple[ThresholdPoint, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return asdict(self)


def judge_score_agreement(
    judge_scores: ArrayLike,
    human_labels: ArrayLike,
    human_scores: ArrayLike | None = None,
    *,
    weights: ArrayLike | None = None,
    thresholds: ArrayLike | None = None,
) -> ScoreAgreement:
    """Compare the judge's alignment score with humans: rank correlation, error, ROC AUC, threshold sweep.

    Lower alignment = more misaligned, so the judge calls misaligned when ``score < threshold``. On a
    judge-stratified sample pass ``weights = 1 / inclusion probability`` so that AUC and the sweep
    estimate population sensitivity/specificity (Horvitz-Thompson weighting); Spearman and MAE are
    unweighted sample values.

    Args:
        judge_scores: Judge alignment score (0-100) per item.
        human_labels: 1 if humans call the item misaligned, else 0.
        human_scores: Optional human alignment score (e.g. the raters' mean) per item.
        weights: Optional per-item weights.
        thresholds: Thresholds to sweep (default 0, 1, ..., 100).
    """
    s = np.asarray(judge_scores, dtype=np.float64)
    y = np.asarray(human_labels, dtype=np.float64)
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=np.float64)
    if s.shape != y.shape or w.shape != s.shape or s.ndim != 1:
        raise CalibrationInputError("judge_scores, human_labels (and weights) need one value per item")
    if not (np.isfinite(s).all() and np.isin(y, (0, 1)).all()):
        raise CalibrationInputError(
            "judge_scores must be finite and human_labels 0/1; drop unscored items first"
        )
    if y.min() == y.max():
        raise UndefinedStatisticError(
            "human labels are all the same: AUC and the threshold sweep need both classes"
        )
    spearman = mae = None
    if human_scores is not None:
        h = np.asarray(human_scores, dtype=np.float64)
        if h.shape != s.shape:
            raise CalibrationInputError("human_scores needs one value per item")
        spearman = float(spearmanr(s, h).statistic)
        mae = float(np.mean(np.abs(s - h)))
    auc = float(roc_auc_score(y, -s, sample_weight=w))
    grid = np.arange(0.0, 101.0) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    pos_w, neg_w = float(np.sum(w * y)), float(np.sum(w * (1 - y)))
    called = s[None, :] < grid[:, None]
    se = (called * (w * y)).sum(axis=1) / pos_w
    sp = ((~called) * (w * (1 - y))).sum(axis=1) / neg_w
    sweep = tuple(
        ThresholdPoint(float(t), float(a), float(b), float(a + b - 1))
        for t, a, b in zip(grid, se, sp, strict=True)
    )
    best = max(sweep, key=lambda p: p.youden_j)
    return ScoreAgreement(len(s), spearman, mae, auc, best, sweep)
