"""Where the next human labels shrink the widest reported interval most (adaptive extension of a study).

A study that has collected some labels knows more than its creation did: each judge stratum's
human-positive rate can be estimated from the labels seen so far. :func:`adaptive_allocation` spends
the next ``K`` labels greedily, one at a time, on the stratum whose extra label most shrinks the
*widest* predicted cell interval (minimax over cells), never more than a stratum has left. Each cell's
interval is predicted with the interval ``calibrate`` reports (the two-phase estimator with
:func:`~emaudit.calibration.two_phase.two_phase_rate`'s default interval, finite-population corrected)
at the expected counts ``p_h n_h``, where ``p_h`` is the smoothed rate ``(x_h + 1/2) / (m_h + 1)``
(``m_h`` labels, ``x_h`` human positives so far; the Jeffreys prior's posterior mean, so a stratum with
no positive yet still has spread), the same smoothing as :func:`~emaudit.calibration.planner.next_batch`.

Inference after an adaptive allocation. Within each stratum the new items are a simple random sample
without replacement of the responses not yet sampled, so *conditional on the labels seen so far* every
one of them had a known inclusion probability ``a_h / (N_h - n_h)``, and the sample of stratum h is
again a sample of ``n_h + a_h`` of its ``N_h`` responses whose estimator weight is ``N_h / (n_h + a_h)``
(what ``calibrate`` uses). Because ``a_h`` was chosen from the labels, the final ``n_h`` is not fixed in
advance: the estimate is the usual stratified (Horvitz-Thompson) one *conditional on the allocation*.
This is the two-phase adaptive allocation of Francis (1984, "An adaptive strategy for stratified
random trawl surveys", N. Z. J. Mar. Freshw. Res. 18:59) discussed by Thompson & Seber (1996,
*Adaptive Sampling*, Wiley): standard practice in survey work, with a small bias of order ``1/n``
because the first-phase labels decide how much weight they keep (Thompson, Ramsey & Seber 1992,
Biometrics 48:1195, give an unbiased Rao-Blackwell alternative). ``benchmarks/adaptive_extend.py``
measures that bias and the coverage of the reported interval.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from emaudit.calibration._validate import check_confidence, count_array, proportion, same_length
from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.two_phase import (
    INTERVALS,
    Interval,
    finite_population_factor,
    two_phase_arrays,
    two_phase_rate,
)

REPORTED_INTERVAL: Interval = inspect.signature(two_phase_rate).parameters["interval"].default
"""The per-stratum limits ``calibrate`` reports: it calls :func:`two_phase_rate` with its default, so
the plan follows that default rather than a copy of it."""

ADAPTIVE_NOTE = (
    "n_h was chosen adaptively from the labels seen so far (minimax half-width); the new items are a "
    "seeded simple random sample without replacement of the stratum's responses not yet sampled, so "
    "inclusion probabilities n_h/N_h hold conditional on the final allocation and the stratified "
    "(Horvitz-Thompson) estimate is conditional on it; the first-phase labels influenced their own "
    "weight, which can bias the estimate by O(1/n) (two-phase adaptive allocation: Francis 1984; "
    "Thompson & Seber 1996, Adaptive Sampling; Thompson, Ramsey & Seber 1992)"
)
"""What an adaptive extension means for inference, recorded in the study's design."""

_Arr = NDArray[np.float64]


@dataclass(frozen=True)
class CellHalfwidth:
    """One cell's predicted half-width before and after the additions.

    Attributes:
        cell: The cell's name.
        before: Predicted half-width once every item already in the study is labelled (``inf`` when a
            stratum of the cell has no item: no estimate).
        after: Predicted half-width with the planned additions labelled as well.
        added: Labels planned in the cell.
    """

    cell: str
    before: float
    after: float
    added: int


@dataclass(frozen=True)
class AdaptivePlan:
    """The additions per stratum and what they are predicted to do to every cell's interval.

    Attributes:
        strata: Stratum names, in the order given.
        added: Items to add per stratum (same order).
        tuning_added: Of those, how many go to the tuning split (share kept per stratum).
        smoothed_rates: ``(x_h + 1/2) / (m_h + 1)`` per stratum.
        cells: Per cell, before / after half-widths, widest first (before).
        interval: The per-stratum limits of the predicted interval (``calibrate``'s).
        confidence: Two-sided coverage.
    """

    strata: tuple[str, ...]
    added: tuple[int, ...]
    tuning_added: tuple[int, ...]
    smoothed_rates: tuple[float, ...]
    cells: tuple[CellHalfwidth, ...]
    interval: str
    confidence: float

    @property
    def widest_before(self) -> float:
        """The widest predicted cell half-width without the additions."""
        return max(c.before for c in self.cells)

    @property
    def widest_after(self) -> float:
        """The widest predicted cell half-width with them."""
        return max(c.after for c in self.cells)

    def additions(self) -> dict[str, int]:
        """Items to add per stratum name (strata with none left out)."""
        return {h: k for h, k in zip(self.strata, self.added, strict=True) if k}

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (``inf`` half-widths as null)."""

        def finite(v: float) -> float | None:
            return None if not np.isfinite(v) else float(v)

        return {
            "method": "minimax_halfwidth",
            "interval": self.interval,
            "confidence": self.confidence,
            "added": self.additions(),
            "tuning_added": {h: t for h, t in zip(self.strata, self.tuning_added, strict=True) if t},
            "smoothed_rates": dict(zip(self.strata, self.smoothed_rates, strict=True)),
            "predicted_halfwidth": {
                c.cell: {"before": finite(c.before), "after": finite(c.after), "added": c.added}
                for c in self.cells
            },
            "widest_before": finite(self.widest_before),
            "widest_after": finite(self.widest_after),
        }


def adaptive_allocation(
    N_per_stratum: Sequence[int] | ArrayLike,
    n_sampled: Sequence[int] | ArrayLike,
    n_labelled: Sequence[int] | ArrayLike,
    n_positive: Sequence[float] | ArrayLike,
    cells: Sequence[str],
    add: int,
    *,
    strata: Sequence[str] | None = None,
    n_tuning: Sequence[int] | ArrayLike | None = None,
    tuning_share: float = 0.0,
    confidence: float = 0.95,
    interval: Interval = REPORTED_INTERVAL,
) -> AdaptivePlan:
    """Allocate ``add`` more labels to the strata where they shrink the widest cell interval most.

    Greedy minimax (see the module docstring): each label goes to the cell whose predicted half-width
    is widest and still has responses to sample (a cell with an unsampled stratum counts as widest of
    all: it has no estimate), and within it to the stratum whose extra label gives the smallest
    predicted half-width. The prediction uses the two-phase estimator's interval (Cochran §12; MOVER
    limits, Zou & Donner 2008) at the expected counts ``p_h n_h`` with the finite-population correction
    ``sqrt(1 - n_h / N_h)``, and the smoothed rate ``p_h = (x_h + 1/2) / (m_h + 1)``. Items of a tuning
    split enter no estimate: with ``tuning_share`` f each stratum's tuning items are topped up to
    ``round(f * n_h)`` of its sampled items (as ``study extend`` draws them), and only the rest count.

    Args:
        N_per_stratum: Responses per stratum (``N_h``).
        n_sampled: Items already in the study per stratum (tuning items included; ``<= N_h``).
        n_labelled: Of the estimation items, how many have a human label (``m_h``).
        n_positive: Of those, human positives ``x_h`` (may be fractional: expected counts of a rater model).
        cells: The cell each stratum belongs to (the intervals that are reported).
        add: Labels to allocate (``>= 1``, at most the responses not yet sampled).
        strata: Stratum names (default ``"0"``, ``"1"``, ...).
        n_tuning: Items of the tuning split per stratum (default none).
        tuning_share: The study's tuning share f in [0, 1).
        confidence: Two-sided coverage of the predicted interval.
        interval: Per-stratum limits (default: the one ``calibrate`` reports).

    Returns:
        :class:`AdaptivePlan`.

    Raises:
        CalibrationInputError: shapes differ, counts are out of range, ``add < 1`` or more than is left.

    Example (two one-stratum cells; cell a is the wide one and gets most of the labels):
        >>> plan = adaptive_allocation([30, 30], [3, 6], [3, 6], [1, 2], ["a", "b"], 6, interval="wald")
        >>> plan.additions()
        {'0': 5, '1': 1}
    """
    check_confidence(confidence)
    if interval not in INTERVALS:
        raise CalibrationInputError(f"interval must be one of {', '.join(INTERVALS)}; got {interval!r}")
    N = count_array("N_per_stratum", N_per_stratum)
    n = count_array("n_sampled", n_sampled)
    m = count_array("n_labelled", n_labelled)
    x = count_array("n_positive", n_positive, whole=False)
    t = np.zeros_like(N) if n_tuning is None else count_array("n_tuning", n_tuning)
    same_length(N_per_stratum=N, n_sampled=n, n_labelled=m, n_positive=x, n_tuning=t)
    names = tuple(str(i) for i in range(len(N))) if strata is None else tuple(str(s) for s in strata)
    cell_of = [str(c) for c in cells]
    if len(names) != len(N) or len(cell_of) != len(N):
        raise CalibrationInputError("give one stratum name and one cell per stratum")
    f = proportion("tuning_share", tuning_share)
    if f >= 1:
        raise CalibrationInputError(f"tuning_share must be below 1; got {tuning_share}")
    if np.any(n > N) or np.any(t > n) or np.any(m > n - t) or np.any(x > m + 1e-9):
        raise CalibrationInputError(
            "counts out of range: need n_positive <= n_labelled <= n_sampled - n_tuning and n_sampled <= N"
        )
    room = N - n
    if int(add) < 1:
        raise CalibrationInputError(f"add must be at least 1, got {add}")
    if add > room.sum():
        raise CalibrationInputError(
            f"only {int(room.sum())} responses are not yet sampled; the most that can be added is "
            f"{int(room.sum())}"
        )
    p = (x + 0.5) / (m + 1.0)
    steps = np.minimum(room, int(add)).astype(np.int64)
    low_d, high_d = _distance_tables(N, n, t, f, p, steps, confidence, interval)
    groups: dict[str, list[int]] = {}
    for j, c in enumerate(cell_of):
        groups.setdefault(c, []).append(j)
    weight = np.zeros(len(N))
    rate: dict[str, float] = {}
    for c, js in groups.items():
        weight[js] = N[js] / N[js].sum()
        rate[c] = float(weight[js] @ p[js])
    w2 = weight**2
    added = np.zeros(len(N), dtype=np.int64)

    def objective(c: str, j_new: int = -1) -> tuple[int, float]:
        # (strata of the cell without an estimation item, predicted half-width), with stratum
        # ``j_new`` given one more label: an empty stratum leaves the cell without any estimate,
        # worse than any width; the width over its other strata only breaks ties.
        empty, lo, hi = 0, 0.0, 0.0
        for j in groups[c]:
            a = added[j] + (j == j_new)
            dl, dh = low_d[j][a], high_d[j][a]
            if np.isnan(dl):
                empty += 1
                continue
            lo += w2[j] * dl * dl
            hi += w2[j] * dh * dh
        r = rate[c]
        return empty, float((min(r + hi**0.5, 1.0) - max(r - lo**0.5, 0.0)) / 2)

    before = {c: objective(c) for c in groups}
    current = dict(before)
    for _ in range(int(add)):
        open_cells = {cell_of[j] for j in range(len(N)) if added[j] < steps[j]}
        top = max(current[c] for c in open_cells)
        # The widest cell that can still grow takes the label (ties: where a cell gets narrowest),
        # in the stratum whose label narrows it most (then by name, so the plan is reproducible).
        best_value, _, _, best = min(
            (objective(c, j), c, names[j], j)
            for c in open_cells
            if current[c] == top
            for j in groups[c]
            if added[j] < steps[j]
        )
        added[best] += 1
        current[cell_of[best]] = best_value
    total = n + added
    tuned = t + np.clip(np.round(f * total) - t, 0, added)
    rows = sorted(
        (
            CellHalfwidth(
                c,
                np.inf if before[c][0] else before[c][1],
                np.inf if current[c][0] else current[c][1],
                int(added[groups[c]].sum()),
            )
            for c in groups
        ),
        key=lambda r: (-r.before, -r.after, r.cell),
    )
    return AdaptivePlan(
        strata=names,
        added=tuple(int(v) for v in added),
        tuning_added=tuple(int(v) for v in tuned - t),
        smoothed_rates=tuple(float(v) for v in p),
        cells=tuple(rows),
        interval=str(interval),
        confidence=float(confidence),
    )


def _estimation_items(n: _Arr, t: _Arr, f: float, extra: _Arr) -> _Arr:
    """Items after adding ``extra``, less the tuning items (topped up to round(f n), never removed)."""
    total = n + extra
    return total - (t + np.clip(np.round(f * total) - t, 0, extra))


def _distance_tables(
    N: _Arr,
    n: _Arr,
    t: _Arr,
    f: float,
    p: _Arr,
    steps: NDArray[np.int64],
    confidence: float,
    interval: Interval,
) -> tuple[list[_Arr], list[_Arr]]:
    """Per stratum and labels added ``a = 0..steps_h``: the distances from ``p_h`` to its two limits.

    The two-phase interval is ``rate -/+ sqrt(sum_h w_h^2 d_h^2)`` with per-stratum distances ``d_h``
    (the finite-population-corrected MOVER distances of :func:`two_phase_arrays`, or ``z`` times the
    standard error for Wald), so each stratum's distances can be computed once for every count it may
    reach, in one vectorised call; NaN where the stratum has no estimation item.
    """
    which = np.repeat(np.arange(len(N)), steps + 1)
    extra = np.concatenate([np.arange(s + 1) for s in steps]).astype(np.float64)
    e = _estimation_items(n[which], t[which], f, extra)
    ok = e >= 1
    e_safe = np.where(ok, e, 1.0)
    pj = p[which]
    # One stratum of weight 1 per row: the row's limits are p -/+ its own distances.
    rate, low, high = two_phase_arrays(
        np.ones(1),
        (pj * e_safe)[:, None],
        e_safe[:, None],
        confidence,
        interval=interval,
        fpc=finite_population_factor(e_safe, N[which])[:, None],
    )
    low_d = np.where(ok, rate - low, np.nan)
    high_d = np.where(ok, high - rate, np.nan)
    cuts = np.cumsum(steps + 1)[:-1]
    return np.split(low_d, cuts), np.split(high_d, cuts)
