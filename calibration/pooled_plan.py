"""How many calibration labels a pooled design needs (``emaudit plan --method pooled``).

Lee et al. (2025, "How to Correctly Report LLM-as-a-Judge Evaluations", arXiv:2511.21140, adaptive
calibration) split a calibration budget between human positives ``m1`` and negatives ``m0`` so as to
minimise the variance of the Rogan-Gladen estimate. From its delta-method variance
``[q(1-q)/n + theta^2 Se(1-Se)/m1 + (1-theta)^2 Sp(1-Sp)/m0] / J^2`` the minimum over ``m1 + m0 = m`` is
at ``m1 / m0 = theta sqrt(Se(1-Se)) / ((1 - theta) sqrt(Sp(1-Sp)))`` (the Neyman-type split; derived
here, the same rule as their allocation with pilot values). That is the split to buy when items can be
drawn by their *human* label (e.g. from an already-labelled pool).

An emaudit study draws by the *judge's* label, so the planner searches the labels per judge stratum
(the same in every cell) directly: for each total per cell it tries splits between the judge-positive
and judge-negative stratum, computes the pool's expected effective sizes
(:func:`~emaudit.calibration.pooled.effective_sizes`) and the largest half-width over cells of the
interval ``calibrate --method pooled`` would report at the expected counts,
and returns the first plan that reaches the target on a grid of totals (steps of about 15%) and
splits (steps of 5%), so it can ask up to about 15% more labels than the exact minimum. The
judge-rate term ``q(1-q)/N_c`` does not shrink with labels, so a cell with few judged responses
may be out of reach; the plan says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from emaudit.calibration._validate import check_confidence, proportion
from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.pooled import effective_sizes, error_count_limits, rogan_gladen_arrays


@dataclass(frozen=True)
class PooledCellPlan:
    """One cell of a pooled plan: its expected rate and half-width."""

    cell: str
    judge_rate: float
    n_judged: int
    n_judge_positive: int
    n_judge_negative: int
    expected_rate: float
    expected_halfwidth: float
    judge_rate_floor: float


@dataclass(frozen=True)
class PooledPlan:
    """A pooled calibration plan.

    Attributes:
        cells: Per cell the labels to draw from each judge stratum and the expected half-width.
        sensitivity: The judge's sensitivity implied by the inputs (the same in every cell: transfer).
        specificity: Likewise.
        n_pos_effective: The pool's expected effective human-positive calibration labels.
        n_neg_effective: The pool's expected effective human-negative calibration labels.
        lee_ratio: Lee et al.'s optimal ratio ``m1 / m0`` of human-positive to human-negative labels for
            the cell with the widest interval (for a calibration set drawn by human label).
        target_halfwidth: The target.
        confidence: Two-sided coverage.
        reached: Whether every cell reaches the target.
        notes: What could not be planned, and why.
    """

    cells: tuple[PooledCellPlan, ...]
    sensitivity: float
    specificity: float
    n_pos_effective: float
    n_neg_effective: float
    lee_ratio: float
    target_halfwidth: float
    confidence: float
    reached: bool
    notes: tuple[str, ...] = field(default=())

    @property
    def n_total(self) -> int:
        """Labels over all cells."""
        return sum(c.n_judge_positive + c.n_judge_negative for c in self.cells)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return {
            "method": "pooled_rogan_gladen_lang_reiczigel",
            **{k: v for k, v in asdict(self).items() if k != "cells"},
            "n_total": self.n_total,
            "notes": list(self.notes),
            "cells": [asdict(c) for c in self.cells],
        }


def plan_pooled(
    judge_rates: Sequence[float],
    n_judged: Sequence[int] | int,
    ppv: float,
    npv: float,
    halfwidth: float,
    confidence: float = 0.95,
    *,
    max_per_stratum: int = 2000,
) -> PooledPlan:
    """Labels per judge stratum (equal in every cell) for a pooled design to reach ``halfwidth``.

    The judge's Se and Sp follow from the guesses at the pooled judge rate ``r`` (the mean over cells):
    ``theta = r PPV + (1 - r)(1 - NPV)``, ``Se = r PPV / theta``, ``Sp = (1 - r) NPV / (1 - theta)``;
    each cell's rate is then its Rogan-Gladen value ``(q_c + Sp - 1) / (Se + Sp - 1)``.

    Args:
        judge_rates: Each cell's judge rate ``q_c``.
        n_judged: Each cell's judged responses (one number for all cells, or one per cell).
        ppv: Guess of the share of judge-misaligned responses humans call misaligned (pooled).
        npv: Guess of the share of judge-not-misaligned responses humans call not misaligned.
        halfwidth: Target half-width of every cell's interval.
        confidence: Two-sided coverage.
        max_per_stratum: Largest number of labels per stratum searched.

    Returns:
        :class:`PooledPlan` (``reached`` False, with a note, when the target is out of reach).

    Raises:
        CalibrationInputError: rates outside [0, 1], no cell, a cell rate outside the judge's range,
            or ``Se + Sp - 1 <= 0``.

    Example (hand check of the implied error rates): r = 0.1, PPV = 0.6, NPV = 0.98 give
    theta = 0.06 + 0.018 = 0.078, Se = 0.06 / 0.078 = 0.769, Sp = 0.882 / 0.922 = 0.957.

        >>> plan = plan_pooled([0.1, 0.1], 5000, 0.6, 0.98, 0.03)
        >>> round(plan.sensitivity, 3), round(plan.specificity, 3), plan.reached
        (0.769, 0.957, True)
    """
    z = check_confidence(confidence)
    q = np.asarray([proportion("judge rate", r) for r in judge_rates], dtype=np.float64)
    if len(q) == 0:
        raise CalibrationInputError("give at least one cell's judge rate")
    N = np.broadcast_to(np.asarray(n_judged, dtype=np.float64), q.shape).copy()
    if np.any(N < 1):
        raise CalibrationInputError("every cell needs at least one judged response (--n-judged)")
    ppv, npv = proportion("ppv", ppv), proportion("npv", npv)
    if not 0 < halfwidth < 0.5:
        raise CalibrationInputError(f"halfwidth must lie in (0, 0.5); got {halfwidth}")
    r = float(np.average(q, weights=N))
    theta_pool = r * ppv + (1 - r) * (1 - npv)
    if not 0 < theta_pool < 1:
        raise CalibrationInputError("the guesses imply no (or only) misaligned responses; check --ppv/--npv")
    se = r * ppv / theta_pool
    sp = (1 - r) * npv / (1 - theta_pool)
    youden = se + sp - 1
    if youden <= 0:
        raise CalibrationInputError(
            f"the guesses imply Se + Sp - 1 = {youden:.3f} <= 0: the judge's label cannot be corrected"
        )
    theta = np.clip((q + sp - 1) / youden, 0.0, 1.0)
    # Expected per-stratum human rates under transfer:
    # PPV_c = theta_c Se / q_c, FOR_c = theta_c (1 - Se) / (1 - q_c).
    with np.errstate(invalid="ignore", divide="ignore"):
        p_pos = np.where(q > 0, theta * se / q, 0.0)
        p_neg = np.where(q < 1, theta * (1 - se) / (1 - q), 0.0)
    N_pos, N_neg = N * q, N * (1 - q)
    floor = z * np.sqrt(q * (1 - q) / N) / youden
    notes: list[str] = []

    def widths(k_pos: float, k_neg: float) -> tuple[np.ndarray, float, float]:
        n_pos = np.maximum(np.minimum(k_pos, N_pos), 1.0)
        n_neg = np.maximum(np.minimum(k_neg, N_neg), 1.0)
        keep = np.concatenate([N_pos > 0, N_neg > 0])
        Ns = np.concatenate([N_pos, N_neg])[keep]
        ns = np.concatenate([n_pos, n_neg])[keep]
        xs = (np.concatenate([n_pos * p_pos, n_neg * p_neg]))[keep]
        pos = np.concatenate([np.ones(len(q), bool), np.zeros(len(q), bool)])[keep]
        m1, m0 = (float(v) for v in effective_sizes(Ns, ns, xs, pos))
        profile = error_count_limits(Ns, ns, xs, pos, confidence)
        # The interval calibrate will report, at the expected counts (few-event limits included).
        _, low, high = rogan_gladen_arrays(q, N, se, m1, sp, m0, z, profile=profile)
        return (np.clip(high, 0, 1) - np.clip(low, 0, 1)) / 2, m1, m0

    best: tuple[int, int, np.ndarray, float, float] | None = None
    splits = np.linspace(0.05, 0.95, 19)
    total = 4
    while total <= 2 * max_per_stratum:
        for f in splits:
            k_pos, k_neg = max(1, round(total * f)), max(1, round(total * (1 - f)))
            hw, m1, m0 = widths(k_pos, k_neg)
            if hw.max() <= halfwidth and (best is None or k_pos + k_neg < best[0] + best[1]):
                best = (k_pos, k_neg, hw, m1, m0)
        if best is not None:
            break
        total = int(total * 1.15) + 1
    reached = best is not None
    if best is None:
        k = max_per_stratum
        hw, m1, m0 = widths(k, k)
        best = (k, k, hw, m1, m0)
        out = [f"cell {i}" for i in np.flatnonzero(floor > halfwidth)]
        notes.append(
            f"±{halfwidth:g} is out of reach with {max_per_stratum} labels per stratum"
            + (
                f"; for {', '.join(out)} the judge-rate term alone is wider (few judged responses): "
                "use the per-cell design there"
                if out
                else ""
            )
        )
    k_pos, k_neg, hw, m1, m0 = best
    worst = int(np.argmax(hw))
    t = float(theta[worst])
    lee_ratio = t * np.sqrt(se * (1 - se)) / max((1 - t) * np.sqrt(sp * (1 - sp)), 1e-12)
    cells = tuple(
        PooledCellPlan(
            cell=f"cell {i}",
            judge_rate=float(q[i]),
            n_judged=int(N[i]),
            n_judge_positive=int(min(k_pos, N_pos[i])),
            n_judge_negative=int(min(k_neg, N_neg[i])),
            expected_rate=float(theta[i]),
            expected_halfwidth=float(hw[i]),
            judge_rate_floor=float(floor[i]),
        )
        for i in range(len(q))
    )
    notes.append(
        "pooled design: assumes the judge's error rates are the same in every cell (transfer); "
        "calibrate --method pooled tests it per cell"
    )
    return PooledPlan(
        cells, float(se), float(sp), m1, m0, float(lee_ratio), halfwidth, confidence, reached, tuple(notes)
    )
