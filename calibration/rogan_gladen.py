"""Rogan-Gladen correction of a judge's raw rate with a shared calibration pool."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from emaudit.calibration._validate import check_confidence, proportion
from emaudit.calibration.errors import (
    CalibrationInputError,
    InconsistentCalibrationError,
    UncorrectableJudgeError,
)
from emaudit.calibration.estimate import Estimate

RGInterval = Literal["lang_reiczigel", "delta"]


def rogan_gladen_rate(
    judge_rate: float,
    n_judged: int,
    sensitivity: float,
    n_pos: int,
    specificity: float,
    n_neg: int,
    confidence: float = 0.95,
    *,
    interval: RGInterval = "lang_reiczigel",
) -> Estimate:
    """Misclassification-corrected rate ``(q + Sp - 1) / (Se + Sp - 1)`` (Rogan & Gladen 1978).

    Use this when sensitivity and specificity come from a calibration pool *shared across cells*, not
    from humans labelling each cell. That assumes the judge's Se and Sp are the same in every cell the
    correction is applied to (transportability); when it fails, so does the correction. When humans
    label a judge-stratified sample within the cell, prefer :func:`two_phase_rate`, which needs no such
    assumption.

    The default interval is Lang & Reiczigel (2014, "Confidence limits for prevalence of disease adjusted
    for estimated sensitivity and specificity", Prev. Vet. Med. 113:13-22): an adjusted Wald interval in
    which ``q`` gets the Agresti-Coull adjustment ``(n q + z^2/2) / (n + z^2)``, Se and Sp get ``+1/+2``
    (Agresti-Caffo), and the centre is shifted by
    ``2 z^2 (theta Se(1-Se)/m1 - (1-theta) Sp(1-Sp)/m0)`` (all on the adjusted values); it accounts for
    the uncertainty in all three inputs. ``interval="delta"`` gives the plain delta-method interval.

    Args:
        judge_rate: Fraction ``q`` of the ``n_judged`` responses the judge calls misaligned.
        n_judged: Responses the judge labelled in the target cell.
        sensitivity: Judge sensitivity estimated on ``n_pos`` human-positive calibration items.
        n_pos: Human-positive items in the calibration pool (``m1``).
        specificity: Judge specificity estimated on ``n_neg`` human-negative items.
        n_neg: Human-negative items in the calibration pool (``m0``).
        confidence: Two-sided coverage.
        interval: ``"lang_reiczigel"`` (default) or ``"delta"``.

    Returns:
        ``Estimate`` with ``method`` ``"rogan_gladen_lang_reiczigel"`` or ``"rogan_gladen_delta"``. The
        limits are clipped to [0, 1]; ``"clipped"`` in ``flags`` says that happened.

    Raises:
        UncorrectableJudgeError: Youden's ``J = Se + Sp - 1`` is not clearly above 0 (its lower
            confidence limit is <= 0), so the correction would divide by a number that may be zero.
        InconsistentCalibrationError: ``judge_rate < 1 - specificity`` or ``judge_rate > sensitivity``
            (the corrected rate would fall outside [0, 1]: the pool's error rates do not hold here).
        CalibrationInputError: a proportion is outside [0, 1] or a sample size is < 1.

    Example:
        >>> est = rogan_gladen_rate(0.4, 1000, 0.9, 200, 0.7, 200)
        >>> round(est.rate, 4), round(est.low, 5), round(est.high, 5)
        (0.1667, 0.05635, 0.26273)
    """
    z = check_confidence(confidence)
    q = proportion("judge_rate", judge_rate)
    se = proportion("sensitivity", sensitivity)
    sp = proportion("specificity", specificity)
    for name, size in (("n_judged", n_judged), ("n_pos", n_pos), ("n_neg", n_neg)):
        if int(size) != size or size < 1:
            raise CalibrationInputError(f"{name} must be a whole number >= 1; got {size}")
    youden = se + sp - 1.0
    j_se = float(np.sqrt(se * (1 - se) / n_pos + sp * (1 - sp) / n_neg))
    if youden <= 0 or youden - z * j_se <= 0:
        raise UncorrectableJudgeError(
            f"Youden's J = Se + Sp - 1 = {youden:.3f} (lower {confidence:.0%} limit {youden - z * j_se:.3f}) "
            "is not clearly above 0: the judge's label carries too little information to correct its rate. "
            "Label more calibration items, or label a judge-stratified sample and use two_phase_rate"
        )
    if q < 1.0 - sp or q > se:
        # theta would be < 0 (> 1): the cell's judge rate is below the pool's false positive rate (above
        # its sensitivity), so Se and Sp do not transport to this cell; clipping would report [0, 0].
        side = f"below 1 - specificity = {1 - sp:.4f}" if q < 1.0 - sp else f"above sensitivity = {se:.4f}"
        raise InconsistentCalibrationError(
            f"judge rate {q:.4f} is {side}: the data contradict the calibration pool (its Se/Sp do not "
            "hold in this cell); label a judge-stratified sample of this cell and use two_phase_rate"
        )
    theta = (q + sp - 1.0) / youden
    if interval == "lang_reiczigel":
        low, high = _lang_reiczigel(q, n_judged, se, n_pos, sp, n_neg, z)
    elif interval == "delta":
        sd = np.sqrt(
            q * (1 - q) / n_judged
            + theta**2 * se * (1 - se) / n_pos
            + (1 - theta) ** 2 * sp * (1 - sp) / n_neg
        )
        low, high = theta - z * sd / youden, theta + z * sd / youden
    else:
        raise CalibrationInputError(f"interval must be 'lang_reiczigel' or 'delta'; got {interval!r}")
    flags: tuple[str, ...] = ()
    if min(theta, low) < 0.0 or max(theta, high) > 1.0:
        flags = ("clipped",)
    clip = lambda v: float(min(max(v, 0.0), 1.0))  # noqa: E731
    return Estimate(clip(theta), clip(low), clip(high), f"rogan_gladen_{interval}", confidence, flags)


def _lang_reiczigel(
    q: float, n: float, se: float, m1: float, sp: float, m0: float, z: float
) -> tuple[float, float]:
    low, high = lang_reiczigel_arrays(q, n, se, m1, sp, m0, z)
    return float(low), float(high)


def lang_reiczigel_arrays(
    q: ArrayLike, n: ArrayLike, se: ArrayLike, m1: ArrayLike, sp: ArrayLike, m0: ArrayLike, z: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Unclipped Lang-Reiczigel (2014) limits, vectorised over any broadcastable shapes (no validation).

    ``m1`` and ``m0`` may be fractional (effective sample sizes of a design-based estimate of Se and
    Sp, as in :func:`emaudit.calibration.pooled.pooled_rogan_gladen_rate`).
    """
    q, n, se, m1, sp, m0 = (np.asarray(v, dtype=np.float64) for v in (q, n, se, m1, sp, m0))
    # Adjusted estimates and sample sizes (Lang & Reiczigel 2014, eq. 5-7).
    z2 = z * z
    q_a = (n * q + z2 / 2) / (n + z2)
    se_a = (m1 * se + 1) / (m1 + 2)
    sp_a = (m0 * sp + 1) / (m0 + 2)
    n_a, m1_a, m0_a = n + z2, m1 + 2, m0 + 2
    j_a = se_a + sp_a - 1
    theta_a = (q_a + sp_a - 1) / j_a
    # Centre shift (eq. 17) and the adjusted delta-method variance (eq. 4 with the adjusted values).
    shift = 2 * z2 * (theta_a * se_a * (1 - se_a) / m1_a - (1 - theta_a) * sp_a * (1 - sp_a) / m0_a)
    sd = (
        np.sqrt(
            q_a * (1 - q_a) / n_a
            + theta_a**2 * se_a * (1 - se_a) / m1_a
            + (1 - theta_a) ** 2 * sp_a * (1 - sp_a) / m0_a
        )
        / j_a
    )
    centre = theta_a + shift
    return centre - z * sd, centre + z * sd
