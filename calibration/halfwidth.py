"""Allocation that minimises the reported interval's half-width (issue 10, point 2).

Neyman allocation ``n_h ∝ N_h S_h`` minimises the normal-approximation variance. The interval
emaudit reports is MOVER (Zou & Donner 2008) over modified Wilson (or Jeffreys) limits per stratum
(Brown, Cai & DasGupta 2001), whose half-width carries a small-sample penalty that the variance does
not see: a stratum with few expected positives has a Wilson interval much wider than
``z sqrt(p (1 - p) / n)``. With many small strata (score bands, deciles) Neyman on variances then
needs far more labels than the target needs. Here the labels are added greedily, a step at a time,
to the stratum whose extra labels shrink the predicted half-width the most: the half-width of the
finite-population-corrected interval at the expected counts ``x_h = p_h n_h``, which is what
:func:`emaudit.calibration.store_plan.predicted_halfwidth` predicts and
:func:`emaudit.calibration.two_phase.two_phase_rate` reports. Greedy marginal allocation is the
classical way to optimise a separable sample-size objective over integers (Cochran 1977, §5.5 for
the variance; Wright 2012, "The equivalence of Neyman optimum allocation for sampling and equal
proportions for apportioning", Am. Stat. 66:217, for the exact greedy optimum of the variance); the
MOVER half-width is not separable, so the greedy path is a heuristic optimum, checked against a
brute-force search in the tests. With several cells, each step serves the cell whose interval is
widest (minimising the largest reported half-width). Every non-empty stratum first gets
``min(min_per_stratum, N_h)`` labels, so no cell is left without an estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from emaudit.calibration._validate import check_confidence, proportion
from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.two_phase import INTERVALS, Interval, finite_population_factor, two_phase_arrays

_Arr = NDArray[np.float64]
_STEPS = (1, 4, 16)


@dataclass(frozen=True)
class HalfwidthAllocation:
    """Labels per stratum and the predicted half-width of each cell's interval.

    Attributes:
        n: Labels per stratum (input order).
        halfwidths: Predicted half-width per cell, in order of first appearance in ``cells``.
        cells: The cell label of each stratum (as given; all 0 for one cell).
        interval: The interval whose half-width was minimised.
    """

    n: NDArray[np.int64]
    halfwidths: tuple[float, ...]
    cells: tuple[object, ...]
    interval: str

    @property
    def n_total(self) -> int:
        """Labels over all strata."""
        return int(self.n.sum())


def expected_halfwidths(
    N_per_stratum: ArrayLike,
    expected_rates: ArrayLike,
    n_per_stratum: ArrayLike,
    confidence: float = 0.95,
    *,
    interval: Interval = "mover_wilson",
) -> _Arr:
    """Predicted half-width of one cell's interval, vectorised over leading axes.

    ``(high - low) / 2`` of the finite-population-corrected two-phase interval at the expected counts
    ``p_h n_h`` (fractional counts are fine for Wilson and Jeffreys limits). Arrays broadcast to
    ``(..., H)``; strata with ``N_h = 0`` contribute nothing; a non-empty stratum with ``n_h < 1``
    gives an infinite half-width (no estimate).
    """
    N = np.asarray(N_per_stratum, dtype=np.float64)
    p = np.asarray(expected_rates, dtype=np.float64)
    n = np.asarray(n_per_stratum, dtype=np.float64)
    N, p, n = np.broadcast_arrays(N, p, n)
    total = N.sum(axis=-1, keepdims=True)
    w = np.where(total > 0, N / np.maximum(total, 1.0), 0.0)
    n_safe = np.where(N > 0, np.maximum(n, 1.0), 1.0)
    fpc = np.where(N > 0, finite_population_factor(np.minimum(n_safe, np.maximum(N, 1.0)), N), 0.0)
    # two_phase_arrays takes one weight vector; the weights enter only as w_h * distance_h, so they
    # are folded into the fpc factor, which broadcasts over the leading axes.
    _, low, high = two_phase_arrays(
        np.ones(N.shape[-1]), p * n_safe, n_safe, confidence, interval=interval, fpc=w * fpc
    )
    hw = (high - low) / 2
    return np.where(np.any((N > 0) & (n < 1), axis=-1), np.inf, hw)


def halfwidth_allocation(
    N_per_stratum: ArrayLike,
    expected_rates: ArrayLike,
    *,
    total: int | None = None,
    target_halfwidth: float | None = None,
    cells: ArrayLike | None = None,
    min_per_stratum: int = 2,
    confidence: float = 0.95,
    interval: Interval = "mover_wilson",
) -> HalfwidthAllocation:
    """Labels per stratum that minimise the predicted half-width of the reported interval.

    Starts every non-empty stratum at ``min(min_per_stratum, N_h)``; then repeatedly takes the cell
    with the widest predicted interval (:func:`expected_halfwidths`) that can still take labels and
    adds a step of labels to the stratum of that cell where they shrink its half-width the most. The
    step is one label until the cell has 50, then 2% of the cell's labels (the greedy path is smooth
    there, and plans of thousands of labels stay fast). Stops when ``total`` labels are placed, or
    when every cell reaches ``target_halfwidth`` (or is a census).

    Args:
        N_per_stratum: Stratum sizes ``N_h``.
        expected_rates: Anticipated human-positive rate ``p_h`` per stratum (e.g. from a pilot).
        total: Labels to place (at most ``sum N_h``). Give this or ``target_halfwidth``.
        target_halfwidth: Stop once every cell's predicted half-width is at most this.
        cells: Cell label per stratum (strata of one cell share an interval); default one cell.
        min_per_stratum: Floor per non-empty stratum (>= 1 keeps every cell estimable).
        confidence: Two-sided coverage of the interval.
        interval: ``mover_wilson`` (default) or ``mover_jeffreys``, the interval that will be reported.

    Returns:
        :class:`HalfwidthAllocation`.

    Example (one cell, strata N = 100 and 900, p = 0.8 and 0.02, 40 labels, floor 2; Neyman gives
    [10, 30], predicted half-width 0.0732):
        >>> a = halfwidth_allocation([100, 900], [0.8, 0.02], total=40)
        >>> a.n.tolist(), round(a.halfwidths[0], 4)
        ([7, 33], 0.0719)
    """
    check_confidence(confidence)
    if interval not in INTERVALS or interval == "wald":
        raise CalibrationInputError(f"interval must be mover_wilson or mover_jeffreys; got {interval!r}")
    N = np.asarray(N_per_stratum, dtype=np.float64)
    p = np.asarray(expected_rates, dtype=np.float64)
    if N.ndim != 1 or p.shape != N.shape:
        raise CalibrationInputError("give one stratum size and one expected rate per stratum")
    if np.any(N < 0) or np.any(np.round(N) != N):
        raise CalibrationInputError("stratum sizes must be whole numbers >= 0")
    for h, rate in enumerate(p):
        proportion(f"expected rate of stratum {h}", float(rate))
    if min_per_stratum < 1:
        raise CalibrationInputError("min_per_stratum must be at least 1, or some cells get no estimate")
    if (total is None) == (target_halfwidth is None):
        raise CalibrationInputError("give either total or target_halfwidth")
    if target_halfwidth is not None:
        proportion("target_halfwidth", target_halfwidth, open_interval=True)
    labels = tuple(
        np.zeros(len(N), dtype=np.int64).tolist() if cells is None else list(np.asarray(cells).tolist())
    )
    if len(labels) != len(N):
        raise CalibrationInputError("give one cell label per stratum")
    order = list(dict.fromkeys(labels))
    members = [np.array([h for h, c in enumerate(labels) if c == cell], dtype=np.int64) for cell in order]
    n = np.where(N > 0, np.minimum(min_per_stratum, N), 0.0)
    if total is not None:
        if total < n.sum():
            raise CalibrationInputError(
                f"total={total} is below the floor of min({min_per_stratum}, N_h) per stratum "
                f"= {int(n.sum())}"
            )
        if total > N.sum():
            raise CalibrationInputError(f"total={total} exceeds the {int(N.sum())} responses in the strata")
    hw = [float(expected_halfwidths(N[m], p[m], n[m], confidence, interval=interval)) for m in members]
    while total is None or n.sum() < total:
        open_cells = [
            i
            for i, m in enumerate(members)
            if np.any(n[m] < N[m]) and (target_halfwidth is None or hw[i] > target_halfwidth + 1e-12)
        ]
        if not open_cells:
            break
        i = max(open_cells, key=lambda k: (hw[k], -k))  # the widest interval; ties: the first cell
        m = members[i]
        budget = math.inf if total is None else total - n.sum()
        step = int(min(_base_step(n[m].sum()), budget))
        best, new_hw = _greedy_step(
            N[m][None], p[m][None], n[m][None], np.array([hw[i]]), step, confidence, interval
        )
        n[m[best[0]]] = min(n[m[best[0]]] + step, N[m[best[0]]])
        hw[i] = float(new_hw[0])
    return HalfwidthAllocation(n.astype(np.int64), tuple(hw), labels, interval)


def halfwidth_allocation_batch(
    N_per_stratum: ArrayLike,
    expected_rates: ArrayLike,
    start: ArrayLike,
    total: int,
    *,
    confidence: float = 0.95,
    interval: Interval = "mover_wilson",
) -> NDArray[np.int64]:
    """:func:`halfwidth_allocation` for one cell in many replications at once (for Monte Carlo).

    ``N_per_stratum``, ``expected_rates`` and ``start`` (labels already placed, e.g. a pilot) have shape
    ``(R, H)``; each replication grows from ``start`` to ``total`` labels by the same greedy rule,
    with its own rates (e.g. smoothed pilot estimates). No validation: this is the simulation's entry.
    """
    N = np.asarray(N_per_stratum, dtype=np.float64)
    p = np.asarray(expected_rates, dtype=np.float64)
    n = np.minimum(np.asarray(start, dtype=np.float64), N).copy()
    hw = expected_halfwidths(N, p, n, confidence, interval=interval)
    rows = np.arange(len(N))
    while True:
        placed = n.sum(axis=-1)
        room = (n < N).any(axis=-1) & (placed < total)
        if not room.any():
            break
        step = max(1, int(min(_base_step(float(placed[room].min())), total - placed[room].max())))
        r = rows[room]
        best, new_hw = _greedy_step(N[r], p[r], n[r], hw[r], step, confidence, interval)
        add = np.minimum(step, np.minimum(N[r, best] - n[r, best], total - placed[r]))
        n[r, best] += add
        hw[r] = new_hw
    return n.astype(np.int64)


def _base_step(placed: float) -> int:
    # One label at a time until the cell has 50, then 2% of its labels: the greedy path is smooth
    # there, and plans of thousands of labels stay fast.
    return max(1, math.floor(0.02 * placed)) if placed >= 50 else 1


def _greedy_step(
    N: _Arr, p: _Arr, n: _Arr, hw: _Arr, step: int, confidence: float, interval: Interval
) -> tuple[NDArray[np.int64], _Arr]:
    """Per replication (rows), the stratum to grow by ``step`` labels and the half-width after it.

    The direction is chosen by looking ahead: each stratum grown by ``step`` x 1, 4 or 16 labels
    (capped at N_h), ranked by half-width saved per label. The look-ahead steps over the small upward
    jumps of the modified Wilson limits (where an expected count enters the Poisson tail, or n passes 50),
    which would otherwise stall a one-label greedy step in front of them; the move itself is ``step``
    labels, so every replication grows alike. Ties go to the smallest look-ahead and the first stratum.
    """
    R, H = n.shape
    idx = np.arange(H)
    grown = np.repeat(n[:, None, None, :], len(_STEPS), axis=1).repeat(H, axis=2)  # (R, K, H, H)
    for k, mult in enumerate(_STEPS):
        grown[:, k, idx, idx] = np.minimum(n + step * mult, N)
    added = (grown - n[:, None, None, :]).sum(axis=-1)
    cand = expected_halfwidths(N[:, None, None, :], p[:, None, None, :], grown, confidence, interval=interval)
    with np.errstate(invalid="ignore"):
        gain = np.where(added > 0, (hw[:, None, None] - cand) / np.maximum(added, 1), -np.inf)
    gain = np.where(np.isfinite(hw)[:, None, None], gain, np.where(added > 0, -cand, -np.inf))
    flat = gain.reshape(R, -1).argmax(axis=1)
    best = (flat % H).astype(np.int64)
    moved = n.copy()
    rows = np.arange(R)
    moved[rows, best] = np.minimum(n[rows, best] + step, N[rows, best])
    return best, expected_halfwidths(N, p, moved, confidence, interval=interval)
