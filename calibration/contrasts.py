"""Differences of two independent rates (a condition vs its baseline, one domain vs another).

A paper states "EM rose from 3% to 24% with in-context examples"; the claim needs an interval for the
difference, not two overlapping intervals. For two estimates from *independent* samples (two cells of a
stratified study are sampled independently) MOVER recovers the difference's limits from each rate's
own interval (Zou & Donner 2008, "Construction of confidence limits about effect measures: a general
approach", Stat. Med. 27:1693, eq. 7); with Wilson intervals as inputs this is Newcombe's hybrid score
interval (Newcombe 1998, "Interval estimation for the difference between independent proportions:
comparison of eleven methods", Stat. Med. 17:873, method 10).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.estimate import Estimate


@dataclass(frozen=True)
class Difference:
    """``first.rate - second.rate`` with its MOVER interval.

    Attributes:
        difference: The point difference (``first - second``, in proportion units).
        low: Lower limit.
        high: Upper limit.
        confidence: The coverage of both inputs, hence of the difference.
        method: ``"mover"`` plus the inputs' method, e.g. ``"mover(two_phase_mover_wilson)"``.
        estimand: The inputs' common estimand, or None when they do not name one.
    """

    difference: float
    low: float
    high: float
    confidence: float
    method: str
    estimand: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of the fields above."""
        return {
            "difference": self.difference,
            "low": self.low,
            "high": self.high,
            "confidence": self.confidence,
            "method": self.method,
            "estimand": self.estimand,
        }


def mover_difference(first: Estimate, second: Estimate, *, estimand: str | None = None) -> Difference:
    """MOVER interval for ``first.rate - second.rate`` of two independent estimates.

    ``L = d - sqrt((p1 - l1)^2 + (u2 - p2)^2)`` and ``U = d + sqrt((u1 - p1)^2 + (p2 - l2)^2)`` with
    ``d = p1 - p2`` (Zou & Donner 2008, eq. 7; Newcombe 1998 method 10 when both inputs are Wilson).
    Each input's interval must have the same confidence and contain its point estimate; asymmetric
    intervals (Wilson, MOVER-Wilson) keep their asymmetry in the difference.

    Args:
        first: The estimate subtracted from (e.g. the condition).
        second: The estimate subtracted (e.g. the baseline), from an independent sample.
        estimand: What both estimates are about (``responses`` or ``questions``), carried to the result.

    Raises:
        CalibrationInputError: The confidences differ or an interval does not contain its estimate.
    """
    if not math.isclose(first.confidence, second.confidence):
        raise CalibrationInputError(
            f"a difference needs intervals of one confidence; got {first.confidence} and {second.confidence}"
        )
    for name, est in (("first", first), ("second", second)):
        if not (est.low - 1e-9 <= est.rate <= est.high + 1e-9):  # rounding at a bound is not an error
            raise CalibrationInputError(
                f"{name} estimate {est.rate} lies outside its interval [{est.low}, {est.high}]"
            )
    d = first.rate - second.rate
    low = d - math.hypot(first.rate - first.low, second.high - second.rate)
    high = d + math.hypot(first.high - first.rate, second.rate - second.low)
    method = first.method if first.method == second.method else f"{first.method},{second.method}"
    return Difference(d, max(low, -1.0), min(high, 1.0), first.confidence, f"mover({method})", estimand)
