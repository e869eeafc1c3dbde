"""Seeded Monte Carlo of the pooled calibration design (coverage, width, the transfer warning).

A study of ``C`` cells, each with ``N`` judged responses and its own prevalence; the judge has one
sensitivity and false positive rate per cell (equal across cells when transfer holds). Humans label
``n`` responses drawn without replacement from each (cell, judge stratum), as ``study create`` does. The
target is the rate among each cell's responses (the ``responses`` estimand).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emaudit.calibration._validate import check_confidence
from emaudit.calibration.pooled import (
    effective_sizes,
    error_count_limits,
    pooled_judge_errors,
    rogan_gladen_arrays,
    transfer_test,
)
from emaudit.calibration.two_phase import finite_population_factor, two_phase_arrays


@dataclass(frozen=True)
class PooledCoverage:
    """Coverage of the pooled intervals per cell over seeded replications.

    Attributes:
        scenario: The inputs.
        coverage: Per cell, the share of replications whose interval held the cell's true rate.
        mc_se: Monte Carlo standard error of the lowest coverage.
        mean_width: Per cell, the mean interval width.
        two_phase_width: Per cell, the mean width of the per-cell two-phase (MOVER-Wilson) interval on the
            same samples, for comparison.
        refused: Share of replications in which the pool was refused (Youden's J not clearly above 0).
        warning_rate: Share of the replications run through the transfer test that warned (None if not run).
        flagged_rate: Per cell, the share of those replications that named it.
    """

    scenario: dict[str, Any]
    coverage: list[float]
    mc_se: float
    mean_width: list[float]
    two_phase_width: list[float]
    refused: float
    warning_rate: float | None = None
    flagged_rate: list[float] = field(default_factory=list)

    @property
    def min_coverage(self) -> float:
        """The lowest per-cell coverage."""
        return min(self.coverage)


def pooled_coverage(
    prevalence: Sequence[float],
    sensitivity: float | Sequence[float],
    fpr: float | Sequence[float],
    N: int,
    n_per_stratum: int | tuple[int, int],
    *,
    reps: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    transfer_reps: int = 0,
) -> PooledCoverage:
    """Simulate the pooled design and measure each cell's coverage (vectorised over replications).

    Args:
        prevalence: True misalignment rate per cell (the model's; each replication draws the cell's count).
        sensitivity: The judge's sensitivity, one value or one per cell (differing = transfer violated).
        fpr: The judge's false positive rate, one value or one per cell.
        N: Judged responses per cell.
        n_per_stratum: Human labels per (cell, judge stratum), capped at the stratum's size; or a pair
            (judge-positive, judge-negative) as :func:`~emaudit.calibration.pooled_plan.plan_pooled` gives.
        reps: Replications.
        seed: Seed (results are reproducible).
        confidence: Two-sided coverage.
        transfer_reps: Replications (the first ones) that also run :func:`transfer_test`.
    """
    z = check_confidence(confidence)
    rng = np.random.default_rng(seed)
    prev = np.asarray(prevalence, dtype=np.float64)
    C = len(prev)
    se = np.broadcast_to(np.asarray(sensitivity, dtype=np.float64), (C,))
    fp = np.broadcast_to(np.asarray(fpr, dtype=np.float64), (C,))
    T = rng.binomial(N, prev, size=(reps, C))  # human positives per cell
    TP = rng.binomial(T, se)
    FP = rng.binomial(N - T, fp)
    N_pos = TP + FP
    N_neg = N - N_pos
    k_pos, k_neg = n_per_stratum if isinstance(n_per_stratum, tuple) else (n_per_stratum, n_per_stratum)
    n_pos = np.minimum(k_pos, N_pos)
    n_neg = np.minimum(k_neg, N_neg)
    x_pos = _hypergeometric(rng, TP, FP, n_pos)
    x_neg = _hypergeometric(rng, T - TP, N_neg - (T - TP), n_neg)
    # Strata (cell, +), (cell, -), interleaved; an empty judge-positive stratum (possible at small N)
    # is given weight 0 and one phantom label so the arrays stay rectangular.
    Ns = np.stack([N_pos, N_neg], axis=-1).reshape(reps, 2 * C).astype(np.float64)
    ns = np.stack([n_pos, n_neg], axis=-1).reshape(reps, 2 * C).astype(np.float64)
    xs = np.stack([x_pos, x_neg], axis=-1).reshape(reps, 2 * C).astype(np.float64)
    empty = Ns == 0
    ns = np.where(empty, 1.0, ns)
    pos = np.tile([True, False], C)
    w = Ns / Ns.sum(axis=-1, keepdims=True)
    p = xs / ns
    a = (w * p * pos).sum(-1)
    b = (w * p * ~pos).sum(-1)
    c = (w * (1 - p) * ~pos).sum(-1)
    d = (w * (1 - p) * pos).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):  # no human positive at all: refused below
        se_hat = a / (a + b)
        sp_hat = c / (c + d)
        m1, m0 = effective_sizes(np.where(empty, 1e-300, Ns), ns, xs, pos)
        limits = error_count_limits(np.where(empty, 1e-300, Ns), ns, xs, pos, confidence)
    youden = se_hat + sp_hat - 1
    ok = (youden > 0) & (_adjusted_youden(se_hat, m1, sp_hat, m0) > 0)
    q = N_pos / N
    _, low, high = rogan_gladen_arrays(
        q,
        N,
        se_hat[:, None],
        m1[:, None],
        sp_hat[:, None],
        m0[:, None],
        z,
        profile=tuple(v[:, None] for v in limits),
    )
    low, high = np.clip(low, 0, 1), np.clip(high, 0, 1)
    truth = T / N
    hit = (low <= truth + 1e-12) & (truth <= high + 1e-12) & ok[:, None]
    coverage = hit.mean(axis=0)
    # The per-cell two-phase design on the same labels, for the width comparison.
    Nc = np.stack([N_pos, N_neg], axis=-1).astype(np.float64)
    nc = np.stack([n_pos, n_neg], axis=-1).astype(np.float64)
    xc = np.stack([x_pos, x_neg], axis=-1).astype(np.float64)
    nc_safe = np.where(Nc == 0, 1.0, nc)
    wc = Nc / N
    _, tp_low, tp_high = two_phase_arrays(
        wc, xc, nc_safe, confidence, fpc=finite_population_factor(nc_safe, np.where(Nc == 0, 1.0, Nc))
    )
    worst = int(np.argmin(coverage))
    result = PooledCoverage(
        scenario={
            "cells": C,
            "prevalence": [float(v) for v in prev],
            "sensitivity": [float(v) for v in se],
            "fpr": [float(v) for v in fp],
            "N": N,
            "n_per_stratum": n_per_stratum,
            "confidence": confidence,
            "seed": seed,
        },
        coverage=[float(v) for v in coverage],
        mc_se=float(np.sqrt(coverage[worst] * (1 - coverage[worst]) / reps)),
        mean_width=[float(v) for v in np.nanmean(np.where(ok[:, None], high - low, np.nan), axis=0)],
        two_phase_width=[float(v) for v in (np.clip(tp_high, 0, 1) - np.clip(tp_low, 0, 1)).mean(axis=0)],
        refused=float(1 - ok.mean()),
    )
    if transfer_reps <= 0:
        return result
    warned = 0
    flagged = np.zeros(C)
    for r in range(min(transfer_reps, reps)):
        keep = ~empty[r]
        pool = pooled_judge_errors(Ns[r][keep], ns[r][keep], xs[r][keep], pos[keep], confidence, seed=seed)
        cells = []
        for cell in range(C):
            strata = [2 * cell + k for k in (0, 1) if not empty[r, 2 * cell + k]]
            cells.append((f"c{cell}", Ns[r, strata], ns[r, strata], xs[r, strata], pos[strata]))
        test = transfer_test(cells, pool, confidence, seed=seed)
        warned += test.warning is not None
        flagged += [c.flagged for c in test.cells]
    runs = min(transfer_reps, reps)
    return PooledCoverage(
        **{
            **result.__dict__,
            "warning_rate": warned / runs,
            "flagged_rate": [float(v) for v in flagged / runs],
        }
    )


def _adjusted_youden(se: Any, m1: Any, sp: Any, m0: Any) -> Any:
    return (m1 * se + 1) / (m1 + 2) + (m0 * sp + 1) / (m0 + 2) - 1


def _hypergeometric(rng: np.random.Generator, good: Any, bad: Any, draws: Any) -> Any:
    good, bad, draws = np.broadcast_arrays(good, bad, draws)
    out = np.zeros(good.shape, dtype=np.int64)
    mask = draws > 0
    out[mask] = rng.hypergeometric(good[mask], bad[mask], draws[mask])
    return out
