"""Carry the uncertainty of posterior human labels into an interval (multiple imputation + MOVER).

With a rater model, each item's label is a probability, not a 0/1 fact. The estimate uses the
posterior means (expected counts); its interval combines two independent parts:

* the design part: the interval the estimator gives at the expected counts (MOVER-Wilson for the
  two-phase rate, the logit interval for sensitivity/specificity), i.e. the within-imputation part;
* the label part: the between-imputation variance ``B`` of the estimate over ``M`` complete label
  sets drawn from the model (:func:`emaudit.calibration.rater_model.posterior_label_draws`), inflated
  to ``(1 + 1/M) B`` as in Rubin's rules (Rubin 1987, *Multiple Imputation for Nonresponse in Surveys*,
  §3.1).

They are combined by MOVER (Zou & Donner 2008): ``L = p - sqrt((p - L_design)^2 + z^2 (1 + 1/M) B)``
and ``U`` likewise, on the probability scale or, for rates near a bound, on the logit scale. This
keeps the design interval's behaviour with few events (where a plain Rubin total variance would be a
Wald interval) and adds the label noise as a normal component.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit, logit

from emaudit.calibration._validate import check_confidence
from emaudit.calibration.estimate import Estimate

Scale = Literal["identity", "logit"]
_CLIP = 1e-9


def widen_for_imputation(
    estimate: Estimate, draws: ArrayLike, *, scale: Scale = "identity", confidence: float | None = None
) -> Estimate:
    """``estimate`` (at the expected counts) widened by the between-imputation spread of ``draws``.

    Args:
        estimate: The design interval computed at the posterior-mean labels.
        draws: The same estimator's point estimate on each of ``M >= 2`` imputed label sets.
        scale: ``"identity"`` (rates) or ``"logit"`` (sensitivity, specificity).
        confidence: Defaults to the estimate's.

    Returns:
        A new :class:`Estimate`: same rate and estimand, ``method`` + ``"+mi"``, flag
        ``"label_uncertainty"``.
    """
    z = check_confidence(estimate.confidence if confidence is None else confidence)
    values = np.asarray(draws, dtype=np.float64)
    m = len(values)
    if m < 2:
        return estimate
    if scale == "logit":
        values = logit(np.clip(values, _CLIP, 1 - _CLIP))
    between = float(np.var(values, ddof=1)) * (1 + 1 / m)
    extra = z * np.sqrt(between)
    rate = estimate.rate
    if scale == "logit" and _CLIP < rate < 1 - _CLIP:
        centre = float(logit(rate))
        low_t = float(logit(max(estimate.low, _CLIP)))
        high_t = float(logit(min(estimate.high, 1 - _CLIP)))
        low = float(expit(centre - np.hypot(centre - low_t, extra)))
        high = float(expit(centre + np.hypot(high_t - centre, extra)))
    else:
        if scale == "logit":  # at a bound the logit spread is not usable; use the probability scale
            raw = np.asarray(draws, dtype=np.float64)
            extra = z * np.sqrt(float(np.var(raw, ddof=1)) * (1 + 1 / m))
        low = rate - float(np.hypot(rate - estimate.low, extra))
        high = rate + float(np.hypot(estimate.high - rate, extra))
    low, high = max(low, 0.0), min(high, 1.0)
    return Estimate(
        rate,
        low,
        high,
        f"{estimate.method}+mi",
        estimate.confidence,
        (*estimate.flags, "label_uncertainty"),
        estimate.estimand,
    )
