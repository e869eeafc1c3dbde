"""How many human labels to collect per stratum: Neyman allocation for a target interval half-width."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from emaudit.calibration._validate import check_confidence, proportion
from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.two_phase import finite_population_factor, two_phase_arrays

_Arr = NDArray[np.float64]


@dataclass(frozen=True)
class CellPlan:
    """Labels to collect in one cell and the interval they are expected to give.

    Attributes:
        cell: The cell's name.
        judge_rate: Share of the cell's responses the judge calls misaligned.
        n_judge_positive: Human labels to draw from the judge-misaligned stratum.
        n_judge_negative: Human labels to draw from the judge-not-misaligned stratum.
        expected_rate: The EM rate implied by the inputs, ``r PPV + (1 - r)(1 - NPV)``.
        expected_low: MOVER-Wilson lower limit at the expected counts.
        expected_high: MOVER-Wilson upper limit at the expected counts.
    """

    cell: str
    judge_rate: float
    n_judge_positive: int
    n_judge_negative: int
    expected_rate: float
    expected_low: float
    expected_high: float

    @property
    def n_total(self) -> int:
        """Labels in this cell."""
        return self.n_judge_positive + self.n_judge_negative


@dataclass(frozen=True)
class SamplePlan:
    """A labelling plan: one :class:`CellPlan` per cell plus the settings that produced it."""

    cells: tuple[CellPlan, ...]
    target_halfwidth: float
    confidence: float
    notes: tuple[str, ...] = field(default=())

    @property
    def n_total(self) -> int:
        """Labels over all cells."""
        return sum(c.n_total for c in self.cells)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (cells as a list of dicts with ``n_total`` added)."""
        return {
            "target_halfwidth": self.target_halfwidth,
            "confidence": self.confidence,
            "n_total": self.n_total,
            "notes": list(self.notes),
            "cells": [{**asdict(c), "n_total": c.n_total} for c in self.cells],
        }


def neyman_allocation(
    weights: ArrayLike, sds: ArrayLike, total: int, *, min_per_stratum: int = 2, caps: ArrayLike | None = None
) -> NDArray[np.int64]:
    """Split ``total`` labels across strata in proportion to ``W_h S_h`` (Neyman 1934).

    Rounds with largest remainders, gives every non-empty stratum at least ``min_per_stratum``, and never
    more than its cap (its stratum size); what a cap frees goes to the other strata.

    Args:
        weights: Stratum shares ``W_h`` (any positive scale).
        sds: Within-stratum standard deviations ``S_h = sqrt(p_h (1 - p_h))``.
        total: Labels to allocate.
        min_per_stratum: Floor per stratum with positive weight.
        caps: Optional per-stratum maxima (e.g. ``N_h``).
    """
    w = np.asarray(weights, dtype=np.float64)
    s = np.asarray(sds, dtype=np.float64)
    cap = np.full(len(w), np.inf) if caps is None else np.asarray(caps, dtype=np.float64)
    active = (w > 0) & (cap > 0)
    floor = np.where(active, np.minimum(min_per_stratum, cap), 0.0)
    if total < floor.sum():
        raise CalibrationInputError(
            f"total={total} labels cannot give each of {int(active.sum())} strata "
            f"its minimum of {min_per_stratum}"
        )
    # A small floor on S_h keeps a stratum whose expected rate is 0 or 1 from getting only its minimum.
    score = np.where(active, w * np.maximum(s, 0.01), 0.0)
    fixed = ~active
    alloc = np.zeros(len(w))
    for _ in range(2 * len(w) + 1):
        free = ~fixed
        budget = total - alloc[fixed].sum()
        if not free.any() or score[free].sum() == 0:
            break
        alloc[free] = budget * score[free] / score[free].sum()
        below = free & (alloc < floor)
        above = free & (alloc > cap)
        if not below.any() and not above.any():
            break
        # Pin the strata that hit their floor or cap, then re-split the rest (Cochran §5.8).
        alloc[below], alloc[above] = floor[below], cap[above]
        fixed |= below | above
    whole = np.floor(alloc)
    short = round(min(total, cap.sum()) - whole.sum())
    order = np.argsort(-(alloc - whole))
    for h in order:
        if short <= 0:
            break
        if whole[h] + 1 <= cap[h]:
            whole[h] += 1
            short -= 1
    return whole.astype(np.int64)


def plan_sample(
    judge_rates_per_stratum: float | Sequence[float] | Mapping[str, float],
    expected_ppv: float,
    expected_npv: float,
    target_halfwidth: float,
    *,
    confidence: float = 0.95,
    n_judged: int | Sequence[int] | None = None,
    min_per_stratum: int = 10,
) -> SamplePlan:
    """Human labels per judge stratum so each cell's corrected rate reaches ``target_halfwidth``.

    For a cell whose judge calls a share ``r`` misaligned, the two strata have weights ``r`` and ``1 - r``
    and human-positive rates ``PPV`` and ``1 - NPV``. Labels are split by Neyman allocation,
    ``n_h ∝ W_h sqrt(p_h (1 - p_h))`` (Neyman 1934; Cochran, *Sampling Techniques*, §5.5), starting from
    the normal-approximation total ``n = z^2 (sum W_h S_h)^2 / d^2``; the total then grows until the
    MOVER-Wilson interval (Zou & Donner 2008) at the expected counts has half-width
    ``(high - low) / 2 <= d``, which is what :func:`two_phase_rate` will report. With ``n_judged`` the
    strata are finite and the check uses the finite-population correction :func:`two_phase_rate`
    applies (``sqrt(1 - n_h / N_h)`` per stratum; the starting total is ``n0 / (1 + n0 / N)``), so a small
    cell is not asked for more labels than its interval needs.

    Args:
        judge_rates_per_stratum: The judge's misaligned share per cell: one float, a sequence (cells
            named ``"0"``, ``"1"``, ...) or a mapping cell name -> share.
        expected_ppv: Expected P(human misaligned | judge misaligned), e.g. from a pilot.
        expected_npv: Expected P(human not misaligned | judge not misaligned).
        target_halfwidth: Wanted half-width ``d`` of each cell's interval (0.02 = 2 percentage points).
        confidence: Two-sided coverage.
        n_judged: Responses judged per cell; caps each stratum's labels at its size.
        min_per_stratum: At least this many labels per non-empty stratum (PPV/NPV need some).

    Returns:
        :class:`SamplePlan`.

    Example:
        >>> plan = plan_sample(0.05, 0.8, 0.99, 0.02)
        >>> plan.cells[0].n_judge_positive, plan.cells[0].n_judge_negative
        (36, 168)
    """
    z = check_confidence(confidence)
    ppv = proportion("expected_ppv", expected_ppv)
    npv = proportion("expected_npv", expected_npv)
    d = proportion("target_halfwidth", target_halfwidth, open_interval=True)
    rates = _named_rates(judge_rates_per_stratum)
    sizes = _sizes(n_judged, len(rates))
    plans = []
    notes: list[str] = []
    for (cell, r), size in zip(rates.items(), sizes, strict=True):
        w = np.array([r, 1 - r])
        p = np.array([ppv, 1 - npv])
        sd = np.sqrt(p * (1 - p))
        caps = None if size is None else np.round(w * size)
        n0 = z * z * float(w @ sd) ** 2 / d**2
        if size is not None:
            n0 = n0 / (1 + n0 / size)  # finite population (Cochran eq. 4.2 with n0 from eq. 5.26)
        total = max(math.ceil(n0), 2 * min_per_stratum)
        limit = int(np.sum(caps)) if caps is not None else 10_000_000
        while True:
            n = neyman_allocation(w, sd, min(total, limit), min_per_stratum=min_per_stratum, caps=caps)
            n_safe = np.maximum(n, 1).astype(np.float64)
            shrink = None if caps is None else finite_population_factor(n, caps)
            rate, low, high = (
                float(v) for v in two_phase_arrays(w, p * n_safe, n_safe, confidence, fpc=shrink)
            )
            if (high - low) / 2 <= d or total >= limit:
                break
            total = math.ceil(total * 1.02) + 1
        if (high - low) / 2 > d:
            notes.append(f"cell {cell}: even labelling every response does not reach ±{d:g}")
        plans.append(CellPlan(cell, r, int(n[0]), int(n[1]), rate, low, high))
    return SamplePlan(tuple(plans), d, confidence, tuple(notes))


def next_batch(
    N_per_stratum: ArrayLike, n_labelled: ArrayLike, n_positive: ArrayLike, batch_size: int
) -> NDArray[np.int64]:
    """Adaptive design: where to put the next ``batch_size`` labels, given the labels so far.

    Adds labels one at a time where they cut the finite-population variance of the two-phase estimate
    ``sum_h W_h^2 S_h^2 (1/n_h - 1/N_h)`` the most (Cochran §5.5: the greedy optimum of this separable
    convex objective is the Neyman allocation of the grown total). The gain of one more label in stratum
    h is ``W_h^2 S_h^2 / (n_h (n_h + 1))``; a stratum that is already a census (``n_h = N_h``) has no
    variance left and gets nothing. ``S_h^2`` uses the smoothed ``(x + 1/2) / (n + 1)`` so a stratum with
    0 positives so far still counts; an unlabelled stratum is served first. Labels already collected
    stay. Returns labels to add per stratum (fewer than ``batch_size`` only when every stratum is full).
    """
    N = np.asarray(N_per_stratum, dtype=np.float64)
    n = np.asarray(n_labelled, dtype=np.float64)
    x = np.asarray(n_positive, dtype=np.float64)
    if batch_size < 1:
        raise CalibrationInputError(f"batch_size must be >= 1; got {batch_size}")
    if N.shape != n.shape or n.shape != x.shape or np.any(n > N) or np.any(x > n):
        raise CalibrationInputError("give N, n and x per stratum with x <= n <= N")
    p = (x + 0.5) / (n + 1.0)
    spread = (N / max(N.sum(), 1.0)) ** 2 * p * (1 - p)
    add = np.zeros(len(N))
    for _ in range(int(min(batch_size, (N - n).sum()))):
        current = n + add
        with np.errstate(divide="ignore"):
            gain = np.where(current > 0, spread / (current * (current + 1)), np.inf)
        gain[current >= N] = -1.0
        add[int(np.argmax(gain))] += 1
    return add.astype(np.int64)


def _named_rates(rates: float | Sequence[float] | Mapping[str, float]) -> dict[str, float]:
    if isinstance(rates, Mapping):
        named = {str(k): float(v) for k, v in rates.items()}
    elif isinstance(rates, int | float):
        named = {"0": float(rates)}
    else:
        named = {str(i): float(v) for i, v in enumerate(rates)}
    if not named:
        raise CalibrationInputError("give at least one judge rate")
    for cell, r in named.items():
        proportion(f"judge rate of cell {cell}", r)
    return named


def _sizes(n_judged: int | Sequence[int] | None, count: int) -> list[int | None]:
    if n_judged is None:
        return [None] * count
    if isinstance(n_judged, int):
        return [n_judged] * count
    sizes = [int(v) for v in n_judged]
    if len(sizes) != count:
        raise CalibrationInputError(f"n_judged needs one size per cell ({count}); got {len(sizes)}")
    return list(sizes)
