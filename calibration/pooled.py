"""A shared calibration pool across cells: the judge's Se/Sp estimated once, Rogan-Gladen per cell.

When a study has many cells (model x domain x shots x ...), labelling a judge-stratified sample in every
cell is expensive. Lee et al. (2025, "How to Correctly Report LLM-as-a-Judge Evaluations",
arXiv:2511.21140) correct each evaluation's raw judge rate ``q`` with the judge's sensitivity and
specificity estimated on a human-labelled calibration set, ``theta = (q + Sp - 1) / (Se + Sp - 1)``
(Rogan & Gladen 1978), with the interval of Lang & Reiczigel (2014, "Confidence limits for prevalence of
disease adjusted for estimated sensitivity and specificity", Prev. Vet. Med. 113:13-22), which carries
the uncertainty of ``q``, ``Se`` and ``Sp``. Here the calibration set is the study's own sample, pooled
over cells:

* ``Se`` and ``Sp`` come from the labelled items of *all* cells by Bayes inversion of the stratified
  design (every (cell, judge stratum) is a stratum; weights ``W_j = N_j / N``). The sample was drawn
  stratified by judge label x cell with inclusion probabilities ``n_j / N_j``; raw pooled confusion
  counts would over-represent the judge-positive strata (and the small cells) and bias both rates.
* Their precision enters the Lang-Reiczigel interval as *effective* sample sizes
  ``m1 = Se (1 - Se) / Var(Se)`` and ``m0 = Sp (1 - Sp) / Var(Sp)``, with the design-based (delta-method,
  phase 1 included) variances of the stratified estimates: the number of human positives (negatives) a
  simple random calibration sample would need for the same precision.
* A cell's raw judge rate ``q`` is known for every judged response of the cell; it is still treated as
  binomial with ``n = N_c`` (Lang-Reiczigel's apparent-prevalence term). The estimand is the rate among
  the cell's responses, and ``(q + Sp - 1) / J`` differs from it by the judge's own misclassification
  noise in that cell, of variance ``(theta Se(1-Se) + (1-theta) Sp(1-Sp)) / N_c <= q(1-q) / N_c``: the
  binomial term bounds it (conservatively) rather than treating ``q`` as a census with no error.

The assumption that buys the saving is **transfer**: the judge's error rates are the same in every cell
(Lee et al. 2025 show the correction stays unbiased under prevalence shift, which is exactly this
assumption). :func:`transfer_test` checks it against each cell's own error rates. The per-cell two-phase
design (:func:`emaudit.calibration.two_phase_rate`) needs no such assumption and stays the default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from emaudit.calibration._validate import check_confidence
from emaudit.calibration.errors import CalibrationInputError, UncorrectableJudgeError
from emaudit.calibration.estimate import Estimate
from emaudit.calibration.judge_errors import _judge_positive_mask, judge_error_rates
from emaudit.calibration.rogan_gladen import lang_reiczigel_arrays
from emaudit.calibration.two_phase import _validated

METHOD = "pooled_rogan_gladen_lang_reiczigel"
"""The ``method`` of every pooled corrected rate."""

ESTIMAND_TEXT = "responses: the rate of human-misaligned answers among the cell's judged responses"
ASSUMPTIONS = (
    "transfer: the judge's sensitivity and specificity are the same in every cell (checked per cell by "
    "the transfer test)",
    "the human label (as the document's human-label model defines it) is the truth",
    "the cell's judge rate is treated as binomial over its judged responses (a conservative bound on the "
    "judge's misclassification noise within the cell)",
)
_MIN_EVENTS = 5  # as judge_errors: with fewer (non-)positives a stratum's p(1-p) is not a usable variance
_Arr = NDArray[np.float64]


@dataclass(frozen=True)
class PooledCalibration:
    """The judge's error rates estimated once from the labelled items of every cell.

    Attributes:
        sensitivity: Pooled sensitivity with its interval (Bayes inversion of the stratified design).
        specificity: Pooled specificity with its interval.
        n_pos_effective: Effective number of human-positive calibration items, ``Se(1-Se)/Var(Se)``.
        n_neg_effective: Effective number of human-negative calibration items, ``Sp(1-Sp)/Var(Sp)``.
        n_labelled: Human labels in the pool.
        n_strata: Strata in the pool.
        se_profile: ``(low, high)`` limits of Se at ``1 - alpha/2`` from the Poisson limits of the pool's
            false-negative count, when that count rests on fewer than 5 effective events (else None);
            see :func:`error_count_limits`.
        sp_profile: The same for Sp and the false-positive count.
    """

    sensitivity: Estimate
    specificity: Estimate
    n_pos_effective: float
    n_neg_effective: float
    n_labelled: float
    n_strata: int
    se_profile: tuple[float, float] | None = None
    sp_profile: tuple[float, float] | None = None

    @property
    def youden(self) -> float:
        """Youden's ``J = Se + Sp - 1``."""
        return self.sensitivity.rate + self.specificity.rate - 1.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return {
            "sensitivity": self.sensitivity.to_dict(),
            "specificity": self.specificity.to_dict(),
            "youden": self.youden,
            "n_pos_effective": self.n_pos_effective,
            "n_neg_effective": self.n_neg_effective,
            "n_labelled": self.n_labelled,
            "n_strata": self.n_strata,
            "se_profile": None if self.se_profile is None else list(self.se_profile),
            "sp_profile": None if self.sp_profile is None else list(self.sp_profile),
        }


def pooled_judge_errors(
    N_per_stratum: Sequence[int] | ArrayLike,
    n_labelled: Sequence[int] | ArrayLike,
    n_positive: Sequence[float] | ArrayLike,
    judge_positive: Sequence[bool],
    confidence: float = 0.95,
    *,
    expected_counts: bool = False,
    seed: int = 0,
) -> PooledCalibration:
    """Sensitivity and specificity of the judge from a stratified sample pooled over cells.

    The strata are every (cell, judge stratum) of the pool; the point estimates are the Bayes inversion
    of :func:`~emaudit.calibration.judge_error_rates` (Cochran, *Sampling Techniques*, §12), whose
    intervals are reported as they are. The effective sizes use the delta-method variance of
    ``Se = A / (A + B)``, ``A = sum_{J+} W_j p_j``, ``B = sum_{J-} W_j p_j`` (and likewise Sp):
    ``Var(Se) = sum_j (dSe/dp_j)^2 p_j (1 - p_j) / n_j`` plus the multinomial (phase-1) variance of the
    shares ``W``. A stratum with fewer than 5 positives or non-positives has no usable ``p_j (1 - p_j)``
    (0 at ``x_j = 0``, which would make the pool look exact); its variance uses the design-weighted rate
    of its judge group (judge-positive or judge-negative strata) with half an event added,
    ``(r_g n_g + 1/2) / (n_g + 1)``, instead.

    Args:
        N_per_stratum: Judged responses per stratum (all strata of all pooled cells).
        n_labelled: Human labels per stratum (every non-empty stratum needs at least one).
        n_positive: Human-misaligned labels per stratum (expected counts with ``expected_counts``).
        judge_positive: Per stratum, whether the judge calls it misaligned.
        confidence: Two-sided coverage of the Se/Sp intervals.
        expected_counts: ``n_positive`` may be fractional (a rater model's posterior sums).
        seed: Seed of the posterior bootstrap that :func:`judge_error_rates` uses with few events.

    Returns:
        :class:`PooledCalibration`.

    Raises:
        CalibrationInputError: as :func:`judge_error_rates` (e.g. no human positive in the pool).

    Example:
        >>> pool = pooled_judge_errors([100, 900, 50, 950], [50, 50, 50, 50], [40, 5, 20, 3],
        ...                            [True, False, True, False])
        >>> round(pool.sensitivity.rate, 4), round(pool.specificity.rate, 4)
        (0.4049, 0.9715)
    """
    check_confidence(confidence)
    N, n, x = _validated(N_per_stratum, n_labelled, n_positive, expected_counts=expected_counts)
    pos = _judge_positive_mask(judge_positive, len(N))
    rates = judge_error_rates(
        N, n, x, pos, confidence, phase1=True, seed=seed, expected_counts=expected_counts
    )
    keep = N > 0
    m1, m0 = effective_sizes(N[keep], n[keep], x[keep], pos[keep])
    limits = error_count_limits(N[keep], n[keep], x[keep], pos[keep], confidence)
    se_lo, se_hi, se_few, sp_lo, sp_hi, sp_few = (float(v) for v in limits)
    return PooledCalibration(
        rates.sensitivity,
        rates.specificity,
        float(m1),
        float(m0),
        float(n[keep].sum()),
        int(keep.sum()),
        (se_lo, se_hi) if se_few else None,
        (sp_lo, sp_hi) if sp_few else None,
    )


def error_count_limits(
    N: ArrayLike, n: ArrayLike, x: ArrayLike, pos: ArrayLike, confidence: float = 0.95
) -> tuple[_Arr, _Arr, _Arr, _Arr, _Arr, _Arr]:
    """Se and Sp limits from Poisson limits of the judge's error counts (the few-event case).

    At a prevalence of 1% the pool's false-negative mass ``B = sum_{J-} W_j p_j`` rests on a handful of
    human positives among the judge-negative labels (often none): its sampling distribution is a scaled
    Poisson, not a normal, and a single event moves Se from 1 to 0.6. With the scale
    ``s = sum_{J-} W_j^2 / n_j / sum_{J-} W_j`` (the mass one event carries) the count ``k = B / s`` gets
    the Jeffreys Poisson limits ``k_L = Gamma^{-1}(alpha/2; k + 1/2)`` (0 when k = 0) and
    ``k_U = Gamma^{-1}(1 - alpha/2; k + 1/2)`` (Brown, Cai & DasGupta 2003, "Interval estimation in
    exponential families", Stat. Sinica 13:19), and ``Se_L = A / (A + s k_U)``, ``Se_U = A / (A + s k_L)``
    with ``A`` as estimated. Likewise Sp from the false-positive mass of the judge-positive strata.
    Vectorised over leading axes (strata last).

    Example (hand check): N = 100 / 900, 50 labels each, 40 / 0 positives: W = 0.1 / 0.9, A = 0.08,
    B = 0, s = (0.81 / 50) / 0.9 = 0.018, k_U = Gamma^{-1}(0.975; 1/2) = chi2_1(0.975) / 2 = 2.5119,
    Se_L = 0.08 / (0.08 + 0.018 * 2.5119) = 0.6389.

        >>> se_low, se_high, few, *_ = error_count_limits([100, 900], [50, 50], [40, 0], [True, False])
        >>> round(float(se_low), 4), float(se_high), float(few)
        (0.6389, 1.0, 1.0)

    Returns:
        ``(se_low, se_high, se_few, sp_low, sp_high, sp_few)``; ``*_few`` is 1.0 where the count is
        below 5 effective events (where the limits are used), else 0.0.
    """
    from scipy.stats import gamma

    N, n, x = (np.asarray(v, dtype=np.float64) for v in (N, n, x))
    pos = np.asarray(pos, dtype=bool)
    w = N / N.sum(axis=-1, keepdims=True)
    p = x / n
    a = 1.0 - confidence
    out: list[_Arr] = []
    for good, bad, rate_of in ((pos, ~pos, p), (~pos, pos, 1.0 - p)):
        right = (np.where(good, w, 0.0) * rate_of).sum(axis=-1)
        wrong = (np.where(bad, w, 0.0) * rate_of).sum(axis=-1)
        scale = (np.where(bad, w * w / n, 0.0)).sum(axis=-1) / np.maximum(
            np.where(bad, w, 0.0).sum(axis=-1), 1e-300
        )
        k = wrong / np.maximum(scale, 1e-300)
        k_low = np.where(k > 0, gamma.ppf(a / 2, k + 0.5), 0.0)
        k_high = gamma.ppf(1 - a / 2, k + 0.5)
        with np.errstate(invalid="ignore", divide="ignore"):
            out += [right / (right + scale * k_high), right / (right + scale * k_low)]
        out.append((k < _MIN_EVENTS).astype(np.float64))
    return out[0], out[1], out[2], out[3], out[4], out[5]


def effective_sizes(N: ArrayLike, n: ArrayLike, x: ArrayLike, pos: ArrayLike) -> tuple[_Arr, _Arr]:
    """Effective calibration sizes ``(m1, m0)`` of the pooled Se and Sp, vectorised over leading axes.

    ``N``, ``n``, ``x`` broadcast to ``(..., S)`` (strata last; every stratum non-empty and labelled);
    ``pos`` has shape ``(S,)``. No validation: :func:`pooled_judge_errors` is the checked entry.
    """
    N, n, x = (np.asarray(v, dtype=np.float64) for v in (N, n, x))
    pos = np.asarray(pos, dtype=bool)
    N_total = N.sum(axis=-1, keepdims=True)
    w = N / N_total
    p = x / n
    p_var = p.copy()
    for group in (pos, ~pos):
        w_g = np.where(group, w, 0.0)
        n_g = np.where(group, n, 0.0).sum(axis=-1, keepdims=True)
        r_g = (w_g * p).sum(axis=-1, keepdims=True) / np.maximum(w_g.sum(axis=-1, keepdims=True), 1e-300)
        r_adj = (r_g * n_g + 0.5) / (n_g + 1.0)
        few = np.minimum(x, n - x) < _MIN_EVENTS
        p_var = np.where(group & few, r_adj, p_var)
    binom = p_var * (1.0 - p_var) / n
    out = []
    for good, bad, rate_of in ((pos, ~pos, p_var), (~pos, pos, 1.0 - p_var)):
        # Se: A = sum_{J+} W p, B = sum_{J-} W p.  Sp: C = sum_{J-} W (1-p), D = sum_{J+} W (1-p).
        a = (np.where(good, w, 0.0) * rate_of).sum(axis=-1, keepdims=True)
        b = (np.where(bad, w, 0.0) * rate_of).sum(axis=-1, keepdims=True)
        total = a + b
        value = a / total
        # d value / d rate_j (the sign flips for Sp, whose rate is 1 - p; squared below anyway).
        grad_p = np.where(good, w * b, -w * a) / total**2
        var = (grad_p**2 * binom).sum(axis=-1)
        g = np.where(good, rate_of * b, -rate_of * a) / total**2  # d value / d W_j
        var = var + ((w * g * g).sum(axis=-1) - (w * g).sum(axis=-1) ** 2) / N_total[..., 0]
        value = value[..., 0]
        out.append(value * (1.0 - value) / np.maximum(var, 1e-300))
    return out[0], out[1]


CONTRADICTS_POOL = "contradicts_pool"
"""Flag of a pooled estimate whose whole unclipped interval lies below 0 (see ``apply_pooled``)."""


def pooled_rogan_gladen_rate(
    judge_rate: float, n_judged: int, pool: PooledCalibration, confidence: float = 0.95
) -> Estimate:
    """One cell's rate corrected with the pooled Se/Sp (Rogan & Gladen 1978; Lang & Reiczigel 2014).

    ``theta = (q + Sp - 1) / (Se + Sp - 1)`` with the Lang-Reiczigel interval on the pool's effective
    sizes (see the module docstring; Lee et al. 2025 use the same plug-in with a separate calibration
    set). The point and the limits are clipped to [0, 1] (flag ``clipped``): unlike
    :func:`~emaudit.calibration.rogan_gladen_rate`, a judge rate below the pooled false positive rate is
    not refused, because at a prevalence of 1% it happens by chance in a fair share of cells, and refusing
    there would leave exactly the low cells without an estimate.

    Args:
        judge_rate: The cell's share of judged responses the judge calls misaligned.
        n_judged: The cell's judged responses ``N_c``.
        pool: The pooled error rates (:func:`pooled_judge_errors`).
        confidence: Two-sided coverage.

    Returns:
        ``Estimate`` with method ``"pooled_rogan_gladen_lang_reiczigel"``, estimand ``"responses"``.

    Raises:
        UncorrectableJudgeError: ``Se + Sp - 1 <= 0`` (also after Lang-Reiczigel's adjustment), so
            the judge's label carries no information to correct with.
        CalibrationInputError: a rate outside [0, 1] or ``n_judged < 1``.

    Example (hand check): q = 0.1, N_c = 1000, Se = 0.8, Sp = 0.95 gives
    theta = (0.1 + 0.95 - 1) / (0.8 + 0.95 - 1) = 0.05 / 0.75 = 0.0667.
    """
    z = check_confidence(confidence)
    if not 0.0 <= judge_rate <= 1.0:
        raise CalibrationInputError(f"judge_rate must lie in [0, 1]; got {judge_rate}")
    if n_judged < 1:
        raise CalibrationInputError(f"n_judged must be >= 1; got {n_judged}")
    check_youden(pool)
    se, sp = pool.sensitivity.rate, pool.specificity.rate
    few_se, few_sp = pool.se_profile is not None, pool.sp_profile is not None
    se_lo, se_hi = pool.se_profile or (se, se)
    sp_lo, sp_hi = pool.sp_profile or (sp, sp)
    theta, low, high = rogan_gladen_arrays(
        judge_rate,
        n_judged,
        se,
        pool.n_pos_effective,
        sp,
        pool.n_neg_effective,
        z,
        profile=(se_lo, se_hi, float(few_se), sp_lo, sp_hi, float(few_sp)),
    )
    t, lo, hi = float(theta), float(low), float(high)
    flags: tuple[str, ...] = ("clipped",) if min(t, lo) < 0.0 or max(t, hi) > 1.0 else ()
    flags += ("few_error_events",) if few_se or few_sp else ()
    # Even the upper limit below 0: the cell's judge rate is under what the pool's false-positive
    # rate predicts, so the pool contradicts this cell (clipping would report a zero-width [0, 0]).
    flags += (CONTRADICTS_POOL,) if hi < 0.0 else ()
    clip = lambda v: float(min(max(v, 0.0), 1.0))  # noqa: E731
    return Estimate(clip(t), clip(lo), clip(hi), METHOD, confidence, flags, "responses")


def rogan_gladen_arrays(
    q: ArrayLike,
    n: ArrayLike,
    se: ArrayLike,
    m1: ArrayLike,
    sp: ArrayLike,
    m0: ArrayLike,
    z: float,
    *,
    profile: tuple[ArrayLike, ...] | None = None,
) -> tuple[_Arr, _Arr, _Arr]:
    """Unclipped Rogan-Gladen point and Lang-Reiczigel limits, vectorised (no validation).

    With ``profile`` (the output of :func:`error_count_limits`), a rate whose error count is few-event
    leaves Lang-Reiczigel's normal term (its estimate is held fixed there) and enters by MOVER (Zou &
    Donner 2008) instead: theta falls with Se and rises with Sp, so its distance to the theta at the
    rate's far Poisson limit is added in squares to Lang-Reiczigel's distance for the other inputs. The
    normal term, even with its centre shift, assumes a roughly normal Se: at prevalence 1% with 20 labels
    per stratum and 20,000 answers per cell, one observed false negative in 160 labels moves Se from 1 to
    0.6, and the interval covered 0.91 (``benchmarks/pooled_coverage.py``).
    """
    q, se, sp = (np.asarray(v, dtype=np.float64) for v in (q, se, sp))
    theta = (q + sp - 1.0) / (se + sp - 1.0)
    low, high = lang_reiczigel_arrays(q, n, se, m1, sp, m0, z)
    if profile is None:
        return theta, low, high
    se_lo, se_hi, se_few, sp_lo, sp_hi, sp_few = (np.asarray(v, dtype=np.float64) for v in profile)
    few_se, few_sp = se_few > 0, sp_few > 0
    exact = 1e12  # a rate held at its estimate: Lang-Reiczigel's term and adjustment for it vanish
    low0, high0 = lang_reiczigel_arrays(
        q, n, se, np.where(few_se, exact, m1), sp, np.where(few_sp, exact, m0), z
    )
    num = q + sp - 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        # theta falls with Se and rises with Sp: the far limits of each few-event rate
        t_se_low, t_se_high = num / (se_hi + sp - 1.0), num / (se_lo + sp - 1.0)
        t_sp_low = (q + sp_lo - 1.0) / (se + sp_lo - 1.0)
        t_sp_high = (q + sp_hi - 1.0) / (se + sp_hi - 1.0)
    down = (theta - low0) ** 2 + np.where(few_se, (theta - t_se_low) ** 2, 0.0)
    down = down + np.where(few_sp, (theta - t_sp_low) ** 2, 0.0)
    up = (high0 - theta) ** 2 + np.where(few_se, (t_se_high - theta) ** 2, 0.0)
    up = up + np.where(few_sp, (t_sp_high - theta) ** 2, 0.0)
    few = few_se | few_sp
    # MOVER (Zou & Donner 2008): the distances to the limits of independent components add in squares.
    low_m = theta - np.sqrt(np.maximum(down, 0.0))
    high_m = theta + np.sqrt(np.maximum(up, 0.0))
    return theta, np.where(few, low_m, low), np.where(few, high_m, high)


def check_youden(pool: PooledCalibration) -> None:
    """Refuse a pool with ``Se + Sp - 1 <= 0`` (or <= 0 after Lang-Reiczigel's adjustment), in one line.

    Only a judge no better than chance is refused: a pool whose J is positive but imprecise (few human
    positives at a prevalence of 1%) gets its imprecision through the small effective sizes, which
    widen the interval, rather than a refusal that would leave every cell without an estimate.
    """
    se, sp = pool.sensitivity.rate, pool.specificity.rate
    m1, m0 = pool.n_pos_effective, pool.n_neg_effective
    youden = se + sp - 1.0
    adjusted = (m1 * se + 1) / (m1 + 2) + (m0 * sp + 1) / (m0 + 2) - 1
    if youden <= 0 or adjusted <= 0:
        raise UncorrectableJudgeError(
            f"pooled Se + Sp - 1 = {youden:.3f} (adjusted {adjusted:.3f}) is not above 0: the judge's "
            "label carries no information to correct its rate with; use the per-cell design (calibrate "
            "without --method pooled)"
        )


@dataclass(frozen=True)
class CellTransfer:
    """One cell's own judge error rates against the pooled ones.

    Attributes:
        cell: The cell's name.
        sensitivity: The cell's own sensitivity at the multiplicity-adjusted level, or None.
        specificity: The cell's own specificity at that level, or None.
        sensitivity_nominal: The same at the document's confidence, or None.
        specificity_nominal: Likewise.
        flagged: True when an adjusted interval excludes the pooled value (transfer doubtful here).
        excluded_at_nominal: Rates (``"sensitivity"``, ``"specificity"``) whose nominal interval excludes
            the pooled value.
        reason: Why the cell was flagged, or why it could not be tested (None when it passed).
        deviation: How far the cell's own estimate lies from the median cell's, in units of its nominal
            half-width on that side (the larger over Se and Sp). Flagged cells are listed by it, most
            different first: when one cell's judge differs it also pulls the pooled value, so other cells
            may be flagged as well (rightly: their pooled rates are biased too), and the median names
            the cell that differs.
    """

    cell: str
    sensitivity: Estimate | None
    specificity: Estimate | None
    sensitivity_nominal: Estimate | None
    specificity_nominal: Estimate | None
    flagged: bool
    excluded_at_nominal: tuple[str, ...]
    reason: str | None
    deviation: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        est = lambda e: None if e is None else e.to_dict()  # noqa: E731
        return {
            "cell": self.cell,
            "sensitivity": est(self.sensitivity),
            "specificity": est(self.specificity),
            "sensitivity_nominal": est(self.sensitivity_nominal),
            "specificity_nominal": est(self.specificity_nominal),
            "flagged": self.flagged,
            "excluded_at_nominal": list(self.excluded_at_nominal),
            "reason": self.reason,
            "deviation": self.deviation,
        }


@dataclass(frozen=True)
class TransferTest:
    """The transfer check of a pooled calibration (see :func:`transfer_test`)."""

    cells: tuple[CellTransfer, ...]
    adjusted_confidence: float
    note: str

    @property
    def flagged_cells(self) -> tuple[str, ...]:
        """Names of the cells whose own error rates differ from the pool's beyond their intervals."""
        flagged = sorted((c for c in self.cells if c.flagged), key=lambda c: -(c.deviation or 0.0))
        return tuple(c.cell for c in flagged)

    @property
    def warning(self) -> str | None:
        """One sentence naming the flagged cells, or None."""
        names = self.flagged_cells
        if not names:
            return None
        return (
            f"transfer assumption doubtful in {len(names)} cell(s): {', '.join(names)} (the judge's own "
            "sensitivity or specificity there differs from the pooled one beyond its interval; listed from "
            "the most unlike the median cell); their pooled rates are suspect: use the per-cell design "
            "(calibrate without --method pooled) for them"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return {
            "flagged_cells": list(self.flagged_cells),
            "adjusted_confidence": self.adjusted_confidence,
            "note": self.note,
            "warning": self.warning,
            "cells": [c.to_dict() for c in self.cells],
        }


def transfer_test(
    cells: Sequence[tuple[str, ArrayLike, ArrayLike, ArrayLike, ArrayLike]],
    pool: PooledCalibration,
    confidence: float = 0.95,
    *,
    expected_counts: bool = False,
    seed: int = 0,
) -> TransferTest:
    """Test the transfer assumption: each cell's own Se and Sp against the pooled values.

    For each cell its own Se and Sp come from Bayes inversion of its judge strata
    (:func:`~emaudit.calibration.judge_error_rates`). A cell is flagged when its interval for Se or Sp
    excludes the pooled estimate. With ``C`` testable cells and two rates each, nominal 95% intervals
    would flag about ``0.05 * 2C`` cells by chance even when transfer holds, so the flag uses
    Bonferroni-adjusted intervals at ``1 - (1 - confidence) / (2C)`` (family-wise error at most
    ``1 - confidence`` when transfer holds); exclusions at the nominal level are listed beside it. A cell
    with too few labels has wide intervals, so passing the test is weak evidence there; a cell with no
    human positive (or negative) cannot be tested for Se (Sp) at all, and says so.

    Args:
        cells: Per cell ``(name, N, n_labelled, n_positive, judge_positive)`` over its judge strata.
        pool: The pooled error rates.
        confidence: The document's confidence.
        expected_counts: ``n_positive`` may be fractional.
        seed: Seed of the few-event posterior bootstrap.

    Returns:
        :class:`TransferTest`.
    """
    check_confidence(confidence)
    testable = []
    results: dict[str, tuple[Any, Any, str | None]] = {}
    for name, N, n, x, pos in cells:
        try:
            nominal = judge_error_rates(N, n, x, pos, confidence, seed=seed, expected_counts=expected_counts)
        except CalibrationInputError as exc:
            results[name] = (None, None, f"not tested: {exc}")
            continue
        testable.append((name, N, n, x, pos))
        results[name] = (nominal, None, None)
    k = max(2 * len(testable), 1)
    medians = {
        key: float(
            np.median([getattr(r[0], key).rate for r in results.values() if r[0] is not None] or [0.0])
        )
        for key in ("sensitivity", "specificity")
    }
    adjusted_level = 1.0 - (1.0 - confidence) / k
    out = []
    for name, *_ in cells:
        nominal, _, reason = results[name]
        if nominal is None:
            out.append(CellTransfer(name, None, None, None, None, False, (), reason))
            continue
        _, N, n, x, pos = next(t for t in testable if t[0] == name)
        adjusted = judge_error_rates(N, n, x, pos, adjusted_level, seed=seed, expected_counts=expected_counts)
        excluded, nominal_excluded = [], []
        deviation = 0.0
        for key in ("sensitivity", "specificity"):
            value = getattr(pool, key).rate
            own = getattr(nominal, key)
            # How unlike the typical cell this one is (the median resists the cell that pulls the pool).
            centre = medians[key]
            side = own.high - own.rate if centre > own.rate else own.rate - own.low
            deviation = max(deviation, abs(centre - own.rate) / max(side, 1e-12))
            if not getattr(adjusted, key).low <= value <= getattr(adjusted, key).high:
                excluded.append(key)
            if not own.low <= value <= own.high:
                nominal_excluded.append(key)
        reason = (
            None
            if not excluded
            else "pooled " + " and ".join(excluded) + f" outside the cell's {adjusted_level:.2%} interval"
        )
        out.append(
            CellTransfer(
                name,
                adjusted.sensitivity,
                adjusted.specificity,
                nominal.sensitivity,
                nominal.specificity,
                bool(excluded),
                tuple(nominal_excluded),
                reason,
                float(deviation),
            )
        )
    note = (
        f"{len(testable)} of {len(cells)} cells testable; a cell is flagged when its own Se or Sp interval "
        f"at {adjusted_level:.2%} (Bonferroni over {k} comparisons, family-wise {confidence:.0%}) excludes "
        f"the pooled value; at the nominal {confidence:.0%} about {(1 - confidence) * k:.1f} exclusions are "
        "expected by chance when transfer holds. Cells with few labels have wide intervals: passing is weak "
        "evidence there."
    )
    return TransferTest(tuple(out), adjusted_level, note)
