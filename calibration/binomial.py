"""Binomial proportion intervals (Wilson 1927; Clopper & Pearson 1934) via statsmodels."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import gammaincinv
from statsmodels.stats.proportion import proportion_confint

from emaudit.calibration._validate import check_confidence
from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.estimate import Estimate


def _check(successes: float, trials: float) -> None:
    if trials <= 0:
        raise CalibrationInputError("a binomial interval needs at least one trial; label at least one item")
    if successes < 0 or successes > trials:
        raise CalibrationInputError(f"successes must lie in [0, trials]; got {successes} of {trials}")


def wilson_ci(successes: int, trials: int, confidence: float = 0.95) -> Estimate:
    """Wilson score interval for a binomial proportion (Wilson 1927).

    Args:
        successes: Number of positive outcomes x.
        trials: Number of trials n > 0.
        confidence: Two-sided coverage.

    Returns:
        ``Estimate(x / n, low, high, "wilson")``.
    """
    check_confidence(confidence)
    _check(successes, trials)
    low, high = proportion_confint(successes, trials, alpha=1 - confidence, method="wilson")
    return Estimate(successes / trials, float(low), float(high), "wilson", confidence)


def clopper_pearson_ci(successes: int, trials: int, confidence: float = 0.95) -> Estimate:
    """Exact (Clopper & Pearson 1934) interval from beta quantiles.

    Args:
        successes: Number of positive outcomes x.
        trials: Number of trials n > 0.
        confidence: Two-sided coverage.

    Returns:
        ``Estimate(x / n, low, high, "clopper_pearson")``.
    """
    check_confidence(confidence)
    _check(successes, trials)
    low, high = proportion_confint(successes, trials, alpha=1 - confidence, method="beta")
    return Estimate(successes / trials, float(low), float(high), "clopper_pearson", confidence)


def wilson_bounds(
    successes: ArrayLike, trials: ArrayLike, confidence: float = 0.95, *, modified: bool = False
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Vectorised Wilson bounds (any broadcastable shapes; trials must be > 0).

    With ``modified=True`` this is the *modified* Wilson interval of Brown, Cai & DasGupta (2001,
    "Interval estimation for a binomial proportion", Stat. Sci. 16:101, §4.1.1): for ``x = 1..x*``
    (``x* = 2`` when n <= 50, else 3) the lower limit is the Poisson limit ``lambda_x / n`` with
    ``lambda_x = chi2_{2x}(alpha) / 2``, and symmetrically for the upper limit near ``x = n``. Plain
    Wilson's lower limit at x = 1 or 2 is too high (coverage dips well below nominal for small p), which
    matters in the judge-not-misaligned stratum, where human positives are rare.
    """
    x = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    if np.any(n <= 0):
        raise CalibrationInputError("every stratum needs at least one human label for a Wilson interval")
    alpha = 1 - confidence
    low, high = proportion_confint(x, n, alpha=alpha, method="wilson")
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    if modified:
        x_star = np.where(n <= 50, 2, 3)
        tail_low = (x >= 1) & (x <= x_star)
        tail_high = (n - x >= 1) & (n - x <= x_star)
        # chi2.ppf only where a tail applies: it dominates the cost of the planner's greedy search.
        x_b, n_b = np.broadcast_arrays(x, n)
        low, high = np.broadcast_to(low, x_b.shape).copy(), np.broadcast_to(high, x_b.shape).copy()
        tail_low, tail_high = np.broadcast_to(tail_low, x_b.shape), np.broadcast_to(tail_high, x_b.shape)
        # chi2_{2x}(alpha) / 2 = gammaincinv(x, alpha): the same quantile without scipy.stats overhead.
        low[tail_low] = gammaincinv(x_b[tail_low], alpha) / n_b[tail_low]
        high[tail_high] = 1 - gammaincinv((n_b - x_b)[tail_high], alpha) / n_b[tail_high]
    return low, high


def jeffreys_bounds(
    successes: ArrayLike, trials: ArrayLike, confidence: float = 0.95
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Vectorised *modified* Jeffreys bounds (Brown, Cai & DasGupta 2001, Stat. Sci. 16:101, §4.1.2).

    The Jeffreys interval is the equal-tailed ``Beta(x + 1/2, n - x + 1/2)`` posterior interval. Its
    coverage dips near 0 and 1, so BCD modify it: ``L(0) = 0`` and ``U(0) = 1 - (alpha/2)^(1/n)`` (the
    exact Clopper-Pearson limit), ``L(1) = 0``; symmetrically ``U(n) = 1``, ``L(n) = (alpha/2)^(1/n)``,
    ``U(n - 1) = 1``. Away from the edges it is shorter than Wilson at small p because it is not pulled
    towards 1/2. ``successes`` may be fractional (expected counts): the ``x <= 1`` rule then covers every
    count below 1, and the x = 0 upper limit is used only for an exact 0.

    Example (hand check, n = 20, 95%): ``U(0) = 1 - 0.025^(1/20) = 1 - exp(ln 0.025 / 20)
    = 1 - exp(-3.688879 / 20) = 1 - 0.831567 = 0.168433``; ``L(20) = 0.831567``.

        >>> low, high = jeffreys_bounds([0, 1, 20], [20, 20, 20])
        >>> [round(float(v), 6) for v in low], round(float(high[0]), 6), float(high[2])
        ([0.0, 0.0, 0.831567], 0.168433, 1.0)
    """
    from scipy.stats import beta

    x = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    if np.any(n <= 0):
        raise CalibrationInputError("every stratum needs at least one human label for a Jeffreys interval")
    alpha = 1 - confidence
    x, n = np.broadcast_arrays(x, n)
    low = np.asarray(beta.ppf(alpha / 2, x + 0.5, n - x + 0.5), dtype=np.float64)
    high = np.asarray(beta.ppf(1 - alpha / 2, x + 0.5, n - x + 0.5), dtype=np.float64)
    edge = (alpha / 2) ** (1.0 / n)
    low = np.where(x <= 1, 0.0, low)
    high = np.where(n - x <= 1, 1.0, high)
    high = np.where(x == 0, 1.0 - edge, high)
    low = np.where(x == n, edge, low)
    return low, high
