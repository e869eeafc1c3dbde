"""Monte Carlo of ``study extend --adaptive``: pilot labels, an extension, then calibrate's intervals.

Each replication draws a finite population of human labels (``M_h ~ Binomial(N_h, p_h)`` positives per
stratum), a pilot simple random sample without replacement of ``pilot`` labels per stratum
(hypergeometric), then ``add`` more labels either where :func:`~emaudit.calibration.adaptive_allocation`
puts them (from the pilot's labels) or split equally over the strata, drawn without replacement from the
responses not yet sampled. Each cell's rate is then estimated from all its labels with
:func:`~emaudit.calibration.two_phase_rate` (what ``calibrate`` reports), and compared with the
population's true rate: coverage, bias, and the widest half-width over cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from emaudit.calibration.adaptive import REPORTED_INTERVAL, adaptive_allocation
from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.two_phase import Interval, two_phase_rate

DESIGNS = ("adaptive", "equal")


@dataclass(frozen=True)
class AdaptiveExtensionResult:
    """What the replications measured, per design (``adaptive``, ``equal``).

    Attributes:
        reps: Replications.
        cells: Cell names (sorted), the order of the per-cell lists.
        widest_halfwidth: Mean over replications of the widest cell half-width.
        coverage: Per cell, the share of replications whose interval held the cell's true rate.
        bias: Per cell, mean of (estimate - true rate).
        mean_added: Mean labels added per stratum (stratum order as given).
        predicted_widest: Mean of the adaptive plan's predicted widest half-width after the additions.
    """

    reps: int
    cells: tuple[str, ...]
    widest_halfwidth: dict[str, float]
    coverage: dict[str, list[float]]
    bias: dict[str, list[float]]
    mean_added: dict[str, list[float]] = field(default_factory=dict)
    predicted_widest: float = float("nan")


def adaptive_extension_replications(
    N_per_stratum: Sequence[int] | ArrayLike,
    rates: Sequence[float] | ArrayLike,
    cells: Sequence[str],
    pilot: int,
    add: int,
    *,
    reps: int = 200,
    seed: int = 0,
    confidence: float = 0.95,
    interval: Interval = REPORTED_INTERVAL,
) -> AdaptiveExtensionResult:
    """Replicate a pilot plus an adaptive (or equal) extension; see the module docstring.

    Args:
        N_per_stratum: Responses per stratum.
        rates: Human-positive probability per stratum (the population is drawn from it).
        cells: Cell of each stratum.
        pilot: Labels per stratum before the extension (``min(pilot, N_h)``).
        add: Labels the extension adds.
        reps: Replications.
        seed: Seed of everything drawn.
        confidence: Two-sided coverage.
        interval: Per-stratum limits of the interval (calibrate's by default).
    """
    N = np.asarray(N_per_stratum, dtype=np.int64)
    p = np.asarray(rates, dtype=np.float64)
    cell_of = np.asarray([str(c) for c in cells])
    if not (len(N) == len(p) == len(cell_of)) or pilot < 1 or add < 1 or reps < 1:
        raise CalibrationInputError("give N, a rate and a cell per stratum, pilot >= 1, add >= 1, reps >= 1")
    n1 = np.minimum(pilot, N)
    equal = _equal_split(N - n1, add)
    names = tuple(sorted(set(cell_of.tolist())))
    members = [np.flatnonzero(cell_of == c) for c in names]
    rng = np.random.default_rng(seed)
    hw = {d: np.zeros(reps) for d in DESIGNS}
    covered = {d: np.zeros((reps, len(names))) for d in DESIGNS}
    error = {d: np.zeros((reps, len(names))) for d in DESIGNS}
    added = {d: np.zeros((reps, len(N))) for d in DESIGNS}
    predicted = np.zeros(reps)
    for r in range(reps):
        M = rng.binomial(N, p)
        truth = np.array([M[j].sum() / N[j].sum() for j in members])
        x1 = _hypergeometric(rng, M, N - M, n1)
        plan = adaptive_allocation(
            N, n1, n1, x1, cell_of.tolist(), add, confidence=confidence, interval=interval
        )
        predicted[r] = plan.widest_after
        for design, extra in (("adaptive", np.asarray(plan.added, dtype=np.int64)), ("equal", equal)):
            x2 = _hypergeometric(rng, M - x1, (N - M) - (n1 - x1), extra)
            n, x = n1 + extra, x1 + x2
            widths = []
            for k, j in enumerate(members):
                est = two_phase_rate(N[j], n[j], x[j], confidence, interval=interval)
                covered[design][r, k] = est.low <= truth[k] <= est.high
                error[design][r, k] = est.rate - truth[k]
                widths.append(est.halfwidth)
            hw[design][r] = max(widths)
            added[design][r] = extra
    return AdaptiveExtensionResult(
        reps=reps,
        cells=names,
        widest_halfwidth={d: float(hw[d].mean()) for d in DESIGNS},
        coverage={d: [float(v) for v in covered[d].mean(axis=0)] for d in DESIGNS},
        bias={d: [float(v) for v in error[d].mean(axis=0)] for d in DESIGNS},
        mean_added={d: [float(v) for v in added[d].mean(axis=0)] for d in DESIGNS},
        predicted_widest=float(predicted.mean()),
    )


def _hypergeometric(
    rng: np.random.Generator, good: np.ndarray, bad: np.ndarray, draws: np.ndarray
) -> np.ndarray:
    # Positives among ``draws`` drawn without replacement; numpy wants at least one draw.
    out = np.zeros(len(draws), dtype=np.int64)
    some = draws > 0
    out[some] = rng.hypergeometric(good[some], bad[some], draws[some])
    return out


def _equal_split(room: np.ndarray, add: int) -> np.ndarray:
    """``add`` labels split as equally as the strata's room allows (water-filling, remainder by order)."""
    if add > room.sum():
        raise CalibrationInputError(f"only {int(room.sum())} responses are left to add")
    out = np.zeros(len(room), dtype=np.int64)
    left = add
    while left:
        open_ = np.flatnonzero(out < room)
        share = max(left // len(open_), 1)
        for j in open_:
            give = min(share, room[j] - out[j], left)
            out[j] += give
            left -= give
            if not left:
                break
    return out
