"""Prediction-powered inference for a rate (Angelopoulos et al. 2023) with PPI++ power tuning."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from emaudit.calibration._validate import check_confidence
from emaudit.calibration.binomial import clopper_pearson_ci
from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.estimate import Estimate


def ppi_rate(
    Y: ArrayLike,
    Yhat: ArrayLike,
    Yhat_unlabeled: ArrayLike,
    confidence: float = 0.95,
    *,
    lam: float | None = None,
) -> Estimate:
    """Prediction-powered estimate of the misaligned rate with a CLT interval.

    ``theta = lam * mean(Yhat_unlabeled) + mean(Y - lam * Yhat)`` (Angelopoulos, Bates, Fannjiang, Jordan &
    Zrnic 2023, "Prediction-powered inference", Science 382:669). ``lam = None`` picks the PPI++ power-tuning
    value ``Cov(Y, Yhat) / ((1 + n/N) Var(Yhat))``, clipped to [0, 1] (Angelopoulos, Duchi & Zrnic 2023,
    "PPI++: Efficient prediction-powered inference", arXiv:2311.01453), so the interval is never wider
    than the classical one from the human labels alone (``lam = 0``); ``lam = 1`` is plain PPI. The
    variance is ``lam^2 Var(Yhat_unlabeled) / N + Var(Y - lam Yhat) / n``. Same numbers as
    ``ppi_py.ppi_mean_ci``.

    Valid when the human-labelled items are a *simple random sample* of the judged responses; for a
    sample stratified by the judge's label use :func:`two_phase_rate`.

    Args:
        Y: Human labels (1 = misaligned) of the ``n`` labelled items.
        Yhat: The judge's prediction for the same items: a 0/1 label or a continuous score in [0, 1]
            (e.g. ``1 - alignment / 100``).
        Yhat_unlabeled: The judge's predictions for the ``N`` responses without a human label.
        confidence: Two-sided coverage.
        lam: Fixed power-tuning parameter, or None to estimate it.

    Returns:
        ``Estimate`` with method ``"ppi++"`` (or ``"ppi_lambda=<lam>"`` when ``lam`` is given); clipped to
        [0, 1] with a ``"clipped"`` flag. When every label is 0 (or every label is 1) the CLT interval
        would have zero width: the result is then the exact Clopper-Pearson interval of the labels
        alone, method ``"clopper_pearson"``, flag ``"constant_labels"``.
    """
    z = check_confidence(confidence)
    y, f, fu = (np.asarray(a, dtype=np.float64).ravel() for a in (Y, Yhat, Yhat_unlabeled))
    if len(y) != len(f):
        raise CalibrationInputError(f"Y and Yhat need one value per labelled item; got {len(y)} and {len(f)}")
    if len(y) < 2 or len(fu) < 2:
        raise CalibrationInputError("need at least two labelled and two unlabelled responses")
    if not all(np.all(np.isfinite(a)) for a in (y, f, fu)):
        raise CalibrationInputError("Y, Yhat and Yhat_unlabeled must be finite numbers (no NaN)")
    n, N = len(y), len(fu)
    if np.all(y == y[0]) and y[0] in (0.0, 1.0):
        # All labels 0 (or all 1): the CLT variance is 0 and the interval would have zero width. The
        # labels alone then give an exact Clopper-Pearson interval (Clopper & Pearson 1934).
        exact = clopper_pearson_ci(int(y.sum()), n, confidence)
        return Estimate(
            exact.rate, exact.low, exact.high, "clopper_pearson", confidence, ("constant_labels",)
        )
    method = f"ppi_lambda={lam:g}" if lam is not None else "ppi++"
    if lam is None:
        cov = float(np.mean((y - y.mean()) * (f - f.mean())))
        var = float(np.var(np.concatenate([f, fu]), ddof=1))
        lam = 0.0 if var == 0 else float(np.clip(cov / ((1 + n / N) * var), 0.0, 1.0))
    theta = float(lam * fu.mean() + np.mean(y - lam * f))
    se = float(np.sqrt(lam * lam * np.var(fu) / N + np.var(y - lam * f) / n))
    low, high = theta - z * se, theta + z * se
    flags: tuple[str, ...] = ()
    if low < 0 or high > 1 or not 0 <= theta <= 1:
        flags = ("clipped",)
    clip = lambda v: float(min(max(v, 0.0), 1.0))  # noqa: E731
    return Estimate(clip(theta), clip(low), clip(high), method, confidence, flags)
