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
    """

    sensitivity: Estimate
    specificity: Estimate
    n_pos_effective: float
    n_neg_effective: float
    n_labelled: float
    n_strata: int

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
    return PooledCalibration(
        rates.sensitivity, rates.specificity, float(m1), float(m0), float(n[keep].sum()), int(keep.sum())
    )


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
    theta, low, high = rogan_gladen_arrays(
        judge_rate, n_judged, se, pool.n_pos_effective, sp, pool.n_neg_effective, z
    )
    t, lo, hi = float(theta), float(low), float(high)
    flags = ("clipped",) if min(t, lo) < 0.0 or max(t, hi) > 1.0 else ()
    clip = lambda v: float(min(max(v, 0.0), 1.0))  # noqa: E731
    return Estimate(clip(t), clip(lo), clip(hi), METHOD, confidence, flags, "responses")


def rogan_gladen_arrays(
    q: ArrayLike, n: ArrayLike, se: ArrayLike, m1: ArrayLike, sp: ArrayLike, m0: ArrayLike, z: float
) -> tuple[_Arr, _Arr, _Arr]:
    """Unclipped Rogan-Gladen point and Lang-Reiczigel limits, vectorised (no validation)."""
    q, se, sp = (np.asarray(v, dtype=np.float64) for v in (q, se, sp))
    theta = (q + sp - 1.0) / (se + sp - 1.0)
    low, high = lang_reiczigel_arrays(q, n, se, m1, sp, m0, z)
    return theta, low, high


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
