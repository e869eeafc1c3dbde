"""Finite cells (issue 9, point 3): planner and adaptive batch under the finite-population correction."""

from __future__ import annotations

import numpy as np
import pytest

from emaudit.calibration import next_batch, neyman_allocation, plan_sample
from emaudit.calibration.simulation import simulated_halfwidth

SCENARIOS = [  # N judged in the cell, judge rate, PPV, NPV, target half-width
    (200, 0.05, 0.8, 0.99, 0.02),
    (500, 0.05, 0.8, 0.99, 0.02),
    (1000, 0.1, 0.7, 0.98, 0.03),
]


def _needed_by_simulation(N: int, r: float, ppv: float, npv: float, d: float) -> int:
    """Smallest total (Neyman-allocated like the planner) whose simulated mean half-width is <= d."""
    w, p = np.array([r, 1 - r]), np.array([ppv, 1 - npv])
    caps = np.round(w * N)

    def halfwidth(total: int) -> float:
        n = neyman_allocation(w, np.sqrt(p * (1 - p)), total, min_per_stratum=10, caps=caps)
        return simulated_halfwidth(caps, p, n, reps=1500, seed=total)

    low, high = 20, int(caps.sum())
    while low < high:  # the mean half-width falls with the total
        mid = (low + high) // 2
        if halfwidth(mid) <= d:
            high = mid
        else:
            low = mid + 1
    return low


@pytest.mark.parametrize(("N", "r", "ppv", "npv", "d"), SCENARIOS)
def test_planner_total_within_ten_percent_of_simulation(
    N: int, r: float, ppv: float, npv: float, d: float
) -> None:
    planned = plan_sample(r, ppv, npv, d, n_judged=N).n_total
    needed = _needed_by_simulation(N, r, ppv, npv, d)
    # Measured (seeded): 99 vs 98, 145 vs 139, 148 vs 143.
    assert abs(planned - needed) <= 0.10 * needed, (planned, needed)


def test_planner_asks_for_fewer_labels_in_a_small_cell() -> None:
    # Without the correction the planner asked for all 200 responses of this cell (issue 9).
    small = plan_sample(0.05, 0.8, 0.99, 0.02, n_judged=200)
    assert small.n_total < 120 and not small.notes
    assert small.cells[0].n_judge_positive == 10  # the 10 judge-positive responses: a census
    assert (small.cells[0].expected_high - small.cells[0].expected_low) / 2 <= 0.02
    assert (
        plan_sample(0.05, 0.8, 0.99, 0.02, n_judged=2000).n_total < plan_sample(0.05, 0.8, 0.99, 0.02).n_total
    )


def test_next_batch_skips_census_strata_and_follows_the_variance() -> None:
    # Stratum 0 is already a census: no variance left there, every label goes to stratum 1.
    assert next_batch([10, 900], [10, 20], [8, 1], 60).tolist() == [0, 60]
    # Room runs out: only what is left is returned.
    assert next_batch([10, 20], [5, 5], [1, 1], 100).tolist() == [5, 15]
    # The greedy batch lands on the Neyman allocation of the grown total (n_h proportional to W_h S_h).
    N, n, x = np.array([1000, 9000]), np.array([10, 10]), np.array([5, 1])
    add = next_batch(N, n, x, 400)
    p = (x + 0.5) / (n + 1.0)
    neyman = neyman_allocation(N, np.sqrt(p * (1 - p)), 420, min_per_stratum=0, caps=N)
    assert np.abs((n + add) - neyman).max() <= 1


def test_mover_jeffreys_is_named_and_keeps_the_finite_population_correction() -> None:
    from emaudit.calibration import two_phase_rate

    census = two_phase_rate([10, 40], [10, 40], [8, 1], interval="mover_jeffreys")
    assert census.method == "two_phase_mover_jeffreys_fpc"
    assert census.width == 0.0 and census.flags == ("census",)
    # Half the stratum labelled: each MOVER distance shrinks by sqrt(1 - 1/2) against the uncorrected one.
    part = two_phase_rate([100, 100], [50, 50], [20, 3], interval="mover_jeffreys")
    plain = two_phase_rate([100, 100], [50, 50], [20, 3], interval="mover_jeffreys", fpc=False)
    assert plain.method == "two_phase_mover_jeffreys"
    assert part.rate - part.low == pytest.approx((plain.rate - plain.low) * 0.5**0.5, rel=1e-12)
    assert part.high - part.rate == pytest.approx((plain.high - plain.rate) * 0.5**0.5, rel=1e-12)
    # Rare positives: Jeffreys limits are not pulled towards 1/2, so shorter than modified Wilson.
    wilson = two_phase_rate([100, 1900], [50, 150], [40, 2])
    jeffreys = two_phase_rate([100, 1900], [50, 150], [40, 2], interval="mover_jeffreys")
    assert jeffreys.rate == wilson.rate and jeffreys.width < wilson.width
    phase1 = two_phase_rate([100, 1900], [50, 150], [40, 2], interval="mover_jeffreys", phase1=True)
    assert phase1.method == "two_phase_mover_jeffreys_phase1" and phase1.width > jeffreys.width
