"""``calibrate --method pooled``: the document's cells corrected with one calibration pool.

The per-cell two-phase document is built first (it is the default and stays in the document as
``corrected_per_cell_design``); this module then replaces each cell's ``corrected`` (and
``by_estimand.responses.corrected``) by the pooled Rogan-Gladen estimate of
:mod:`emaudit.calibration.pooled`, adds the transfer test, and names the method, the estimand and the
assumptions in ``rules``, in ``pooled_calibration`` and in ``warnings``. The overall row keeps its
two-phase estimate: over the whole study the pooled correction needs no transfer (with every cell in the
pool, the Rogan-Gladen correction of the overall judge rate with the pooled Se/Sp *is* the overall
two-phase estimate, since ``q = Se theta + (1 - Sp)(1 - theta)`` holds exactly for the estimates).

Fields added (schema ``emaudit.calibrate/1``): ``method`` (``"pooled"``); ``warnings`` (list of
sentences; the transfer warning naming the cells); ``pooled_calibration``: {method, estimand,
assumptions, judge_rate_model, pool (:meth:`PooledCalibration.to_dict`) or error, pool_cells,
transfer_test (:meth:`TransferTest.to_dict`), overall_method}; per cell ``corrected_per_cell_design``
and flags ``transfer_doubtful`` / ``not_in_pool`` on the pooled estimate.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd

from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.imputation import widen_for_imputation
from emaudit.calibration.pooled import (
    ASSUMPTIONS,
    CONTRADICTS_POOL,
    ESTIMAND_TEXT,
    METHOD,
    PooledCalibration,
    pooled_judge_errors,
    pooled_rogan_gladen_rate,
    transfer_test,
)

METHODS = ("two_phase", "pooled")
"""What ``calibrate --method`` accepts: the per-cell two-phase design (default) or the shared pool."""

INTERVAL_TEXT = (
    "pooled calibration: each cell's judge rate corrected by Rogan-Gladen with the judge's sensitivity "
    "and specificity estimated once from every cell's labels (Bayes inversion of the stratified design), "
    "Lang-Reiczigel interval on the pool's effective sizes (Lee et al. 2025; Lang & Reiczigel 2014); "
    "assumes transfer (the judge's error rates are the same in every cell); the overall row is two-phase"
)


def apply_pooled(
    document: dict[str, Any],
    counts: pd.DataFrame,
    draw_sums: np.ndarray,
    positive: set[str],
    confidence: float,
    seed: int,
) -> None:
    """Turn the two-phase ``document`` into the pooled one, in place (see the module docstring).

    Args:
        document: The two-phase calibrate document (responses estimand).
        counts: One row per (cell, stratum): ``N``, ``n_labelled``, ``n_positive`` (majority),
            ``n_positive_expected`` (label model).
        draw_sums: Per row of ``counts``, positives in each imputed label set (rows x M; M = 0 without).
        positive: Judge-positive strata.
        confidence: Two-sided coverage.
        seed: Seed of the few-event bootstraps.
    """
    is_pos = counts["stratum"].astype(str).isin(positive).to_numpy()
    N = counts["N"].to_numpy(dtype=np.float64)
    n = counts["n_labelled"].to_numpy(dtype=np.float64)
    x = counts["n_positive_expected"].to_numpy(dtype=np.float64)
    x_major = counts["n_positive"].to_numpy(dtype=np.float64)
    cell_of = counts["cell"].to_numpy()
    # A cell enters the pool when every non-empty stratum of it has labels (else its Bayes inversion
    # would miss that stratum's human positives); cells outside still get a pooled estimate.
    unlabelled = pd.Series((N > 0) & (n == 0)).groupby(cell_of).any()
    in_pool_cell = {c: not bool(v) for c, v in unlabelled.items()}
    rows = np.array([in_pool_cell[c] for c in cell_of]) & (N > 0)
    block: dict[str, Any] = {
        "method": METHOD,
        "estimand": ESTIMAND_TEXT,
        "assumptions": list(ASSUMPTIONS),
        "judge_rate_model": "binomial over the cell's judged responses (Lang-Reiczigel's apparent-rate "
        "term), a conservative bound on the judge's misclassification noise within the cell",
        "pool_cells": sorted(str(c) for c, ok in in_pool_cell.items() if ok),
        "overall_method": "two-phase (needs no transfer over the whole study)",
    }
    document["method"] = "pooled"
    document["rules"]["interval"] = INTERVAL_TEXT
    document["rules"]["method"] = "pooled"
    document["rules"]["assumptions"] = list(ASSUMPTIONS)
    warnings: list[str] = document.setdefault("warnings", [])
    imputed = draw_sums.shape[1] > 0
    try:
        pool = pooled_judge_errors(
            N[rows], n[rows], x[rows], is_pos[rows], confidence, expected_counts=True, seed=seed
        )
    except CalibrationInputError as exc:
        block["error"] = str(exc)
        warnings.append(f"pooled calibration impossible: {exc}")
        for cell in document["cells"]:
            _set_corrected(cell, None)
            cell["errors"].append(f"pooled corrected rate: {exc}")
        document["pooled_calibration"] = block
        return
    perfect_pool: PooledCalibration | None = pool
    if imputed:
        try:
            perfect_pool = pooled_judge_errors(
                N[rows], n[rows], np.minimum(x_major, n)[rows], is_pos[rows], confidence, seed=seed
            )
        except CalibrationInputError:
            perfect_pool = None
    test = transfer_test(
        [
            (str(c), N[m], n[m], x[m], is_pos[m])
            for c in sorted(in_pool_cell, key=str)
            if (m := (cell_of == c) & (N > 0)).any()
        ],
        pool,
        confidence,
        expected_counts=True,
        seed=seed,
    )
    flagged = set(test.flagged_cells)
    contradicted: list[str] = []
    draw_rates = _draw_rates(N[rows], n[rows], draw_sums[rows], is_pos[rows]) if imputed else None
    for cell in document["cells"]:
        name = cell["cell"]
        q, n_judged = cell["judge_rate"], cell["n_judged"]
        try:
            estimate = pooled_rogan_gladen_rate(q, n_judged, pool, confidence)
        except CalibrationInputError as exc:
            _set_corrected(cell, None)
            cell["errors"].append(f"pooled corrected rate: {exc}")
            continue
        if draw_rates is not None:
            se_d, sp_d = draw_rates
            with np.errstate(invalid="ignore", divide="ignore"):
                theta_d = np.clip((q + sp_d - 1) / (se_d + sp_d - 1), 0, 1)
            estimate = widen_for_imputation(estimate, theta_d[np.isfinite(theta_d)])
        if CONTRADICTS_POOL in estimate.flags:  # the labelled items may agree; the judge rate does not
            contradicted.append(str(name))
        doubtful = str(name) in flagged or CONTRADICTS_POOL in estimate.flags
        extra_flags: tuple[str, ...] = ("transfer_doubtful",) if doubtful else ()
        extra_flags += () if in_pool_cell.get(name, False) else ("not_in_pool",)
        corrected = {**estimate.to_dict(), "flags": [*estimate.flags, *extra_flags]}
        per_cell = cell["by_estimand"]["responses"]["corrected"]
        _set_corrected(cell, corrected)
        cell["corrected_per_cell_design"] = per_cell
        if perfect_pool is None:
            cell["corrected_if_raters_perfect"] = None
        elif imputed:
            try:
                cell["corrected_if_raters_perfect"] = pooled_rogan_gladen_rate(
                    q, n_judged, perfect_pool, confidence
                ).to_dict()
            except CalibrationInputError:
                cell["corrected_if_raters_perfect"] = None
        else:
            cell["corrected_if_raters_perfect"] = corrected
    block["pool"] = pool.to_dict()
    block["transfer_test"] = test.to_dict()
    if test.warning:
        warnings.append(test.warning)
    if contradicted:
        warnings.append(
            "pooled calibration does not transfer to cell(s) "
            + ", ".join(contradicted)
            + ": their judge rate lies below the pool's false-positive rate beyond its interval, so their "
            "pooled intervals collapse to [0, 0]; read corrected_per_cell_design for them"
        )
    document["pooled_calibration"] = block


def _set_corrected(cell: dict[str, Any], corrected: dict[str, Any] | None) -> None:
    # A one-cell document's overall row shares the cell's nested dicts: copy before changing them.
    cell["by_estimand"] = copy.deepcopy(cell["by_estimand"])
    cell["corrected"] = corrected
    cell["by_estimand"]["responses"]["corrected"] = corrected


def _draw_rates(
    N: np.ndarray, n: np.ndarray, draw_sums: np.ndarray, is_pos: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The pooled Se and Sp on each imputed label set (the rater model's label uncertainty)."""
    w = (N / N.sum())[:, None]
    p = draw_sums / n[:, None]
    pos = is_pos[:, None]
    a, b = (w * p * pos).sum(axis=0), (w * p * ~pos).sum(axis=0)
    c, d = (w * (1 - p) * ~pos).sum(axis=0), (w * (1 - p) * pos).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return a / (a + b), c / (c + d)
