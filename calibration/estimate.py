"""The result type shared by every interval estimator in this package."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Estimand = Literal["responses", "questions"]
ESTIMANDS: tuple[Estimand, ...] = ("responses", "questions")


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a two-sided interval.

    Attributes:
        rate: The point estimate (a proportion for every estimator in this package).
        low: Lower interval bound.
        high: Upper interval bound.
        method: How the interval was computed, e.g. ``"two_phase_mover_wilson"``.
        confidence: Nominal two-sided coverage of ``[low, high]``.
        flags: Explicit notes about degenerate or adjusted results (e.g. ``"clipped"``); empty when none.
        estimand: What the interval is about: ``"responses"`` (these answers to these questions; answers
            independent given the questions) or ``"questions"`` (the population of questions the
            evaluation set stands for: questions are clusters, the interval is cluster-robust).
    """

    rate: float
    low: float
    high: float
    method: str
    confidence: float = 0.95
    flags: tuple[str, ...] = field(default=())
    estimand: Estimand = "responses"

    @property
    def halfwidth(self) -> float:
        """Half the interval's width, ``(high - low) / 2`` (intervals may be asymmetric about ``rate``)."""
        return (self.high - self.low) / 2

    @property
    def width(self) -> float:
        """``high - low``."""
        return self.high - self.low

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict with the fields above."""
        out = asdict(self)
        out["flags"] = list(self.flags)
        return out
