"""Score bands and the half-width allocation (issue 10, point 2): by hand, brute force, seeded coverage."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.halfwidth import (
    expected_halfwidths,
    halfwidth_allocation,
    halfwidth_allocation_batch,
)
from emaudit.calibration.planner import neyman_allocation
from emaudit.calibration.score_model import band_design, large_sample_bands, score_band_coverage
from emaudit.calibration.store_plan import plan_cell, predicted_halfwidth
from emaudit.labels import band_names, check_band_edges

Z = 1.959964


def test_hand_derived_allocation_of_two_symmetric_strata() -> None:
    # N = (40, 40), p = (0.5, 0.5), floor 10, 22 labels. At p = 1/2 the Wilson limits sit at
    # 1/2 -+ (z/2) / sqrt(n + z^2) (the centre is exactly 1/2), and x = n/2 >= 5 is outside the modified
    # tails, so with w = 1/2 and fpc sqrt(1 - n/40) the MOVER half-width is
    #   hw(n1, n2) = sqrt(sum_h (1/4)(1 - n_h/40) z^2 / (4 (n_h + z^2))) = (z/4) sqrt(f(n1) + f(n2)),
    #   f(n) = (1 - n/40) / (n + z^2), z^2 = 3.841459.
    # From (10, 10): +1 in either stratum is a tie, and the first stratum wins: (11, 10). Next:
    #   (12, 10): f = 0.7/15.841459 + 0.75/13.841459 = 0.044188 + 0.054185 = 0.098373
    #   (11, 11): f = 2 x 0.725/14.841459 = 0.097699   <- smaller, so (11, 11),
    # hw = (1.959964/4) sqrt(0.097699) = 0.489991 x 0.312568 = 0.153156.
    a = halfwidth_allocation([40, 40], [0.5, 0.5], total=22, min_per_stratum=10)
    assert a.n.tolist() == [11, 11]
    assert a.halfwidths[0] == pytest.approx(0.153156, abs=2e-6)
    assert halfwidth_allocation([40, 40], [0.5, 0.5], total=21, min_per_stratum=10).n.tolist() == [11, 10]
    # The same number from the planner's predicted half-width (one definition of "predicted").
    assert predicted_halfwidth(np.array([40.0, 40.0]), np.array([0.5, 0.5]), np.array([11, 11])) == (
        pytest.approx(0.153156, abs=2e-6)
    )


def test_greedy_is_within_two_percent_of_the_brute_force_optimum() -> None:
    N = np.array([30, 60, 400])
    p = np.array([0.7, 0.2, 0.02])
    for total in (20, 45, 90):
        best = math.inf
        for n1, n2 in itertools.product(range(2, 31), range(2, 61)):
            n3 = total - n1 - n2
            if 2 <= n3 <= 400:
                best = min(best, float(expected_halfwidths(N, p, [n1, n2, n3])))
        greedy = halfwidth_allocation(N, p, total=total)
        assert greedy.n_total == total
        assert greedy.halfwidths[0] <= best * 1.02, (total, greedy.n.tolist(), best)


def test_halfwidth_beats_neyman_with_many_small_strata_and_matches_it_in_large_samples() -> None:
    # Five score strata ("deciles"-like): the greedy plan reaches +-2 points with fewer labels than
    # Neyman on variances grown to the same target.
    N = [1400, 900, 500, 2000, 15200]
    p = [0.8, 0.3, 0.1, 0.03, 0.005]
    n_neyman, hw_neyman = plan_cell(N, p, 0.02)
    n_half, hw_half = plan_cell(N, p, 0.02, allocation="halfwidth")
    assert hw_half <= 0.02 and hw_neyman <= 0.02
    assert n_half.sum() < 0.95 * n_neyman.sum()
    # Large samples, rates away from 0 (no small-sample penalty): the greedy plan is Neyman's
    # n_h ∝ N_h S_h (Neyman 1934; Cochran 1977, eq. 5.25), here 1000 x (0.5, 0.5 x 0.4583/0.5 ...).
    N2, p2 = np.array([10**6, 10**6]), np.array([0.5, 0.3])
    greedy = halfwidth_allocation(N2, p2, total=4000)
    neyman = neyman_allocation(N2 / N2.sum(), np.sqrt(p2 * (1 - p2)), 4000)
    assert greedy.n == pytest.approx(neyman, rel=0.03)


def test_several_cells_serve_the_widest_interval_and_keep_every_floor() -> None:
    N = [50, 400, 5, 300]
    p = [0.8, 0.05, 0.8, 0.05]
    a = halfwidth_allocation(N, p, total=120, cells=["a", "a", "b", "b"])
    assert a.n_total == 120 and np.all(a.n >= 2) and np.all(a.n <= N)
    # The min-max rule: the two cells end close to each other, not one wide and one tight.
    assert abs(a.halfwidths[0] - a.halfwidths[1]) < 0.2 * max(a.halfwidths)
    target = halfwidth_allocation(N, p, target_halfwidth=0.06, cells=["a", "a", "b", "b"])
    assert max(target.halfwidths) <= 0.06


def test_batch_allocation_matches_the_single_one_for_identical_replications() -> None:
    N = np.tile([100, 900], (3, 1))
    p = np.tile([0.8, 0.02], (3, 1))
    batch = halfwidth_allocation_batch(N, p, np.full((3, 2), 2), 40)
    assert batch.sum(axis=1).tolist() == [40, 40, 40]
    single = halfwidth_allocation([100, 900], [0.8, 0.02], total=40).n
    assert batch[0].tolist() == single.tolist()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"total": 3}, "below the floor"),
        ({"total": 10_000}, "exceeds"),
        ({}, "either total or target_halfwidth"),
        ({"total": 40, "min_per_stratum": 0}, "at least 1"),
        ({"total": 40, "interval": "wald"}, "mover_wilson or mover_jeffreys"),
    ],
)
def test_bad_allocation_inputs_say_what_to_change(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(CalibrationInputError, match=message):
        halfwidth_allocation([100, 900], [0.8, 0.02], **kwargs)  # type: ignore[arg-type]


def test_band_names_and_edges() -> None:
    assert band_names() == ["near_30_60", "clean_60_100"]
    assert band_names((40.0, 55.5)) == ["near_30_40", "near_40_55p5", "clean_55p5_100"]
    assert check_band_edges("40, 60") == (40.0, 60.0)
    for bad, message in (("25", "strictly between"), ("100", "strictly between"), ("60,40", "increase"),
                         ("a", "numbers"), ("", "at least one")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            check_band_edges(bad)


def test_band_design_reproduces_the_hand_computed_weights_and_the_bound() -> None:
    w, p = band_design(0.05, 0.5, 0.005, edges=(50.0,))
    assert w.sum() == pytest.approx(1.0) and float(w @ p) == pytest.approx(0.05)
    assert w[1] == pytest.approx(0.021632 + 0.048113, abs=2e-5)
    # Cauchy-Schwarz: (sum W S)^2 <= sum W S^2, so Neyman on bands never needs more than PPI++ on bands.
    bound = large_sample_bands(w, p, np.array([0.02975, 0.97025]), np.array([0.8403, 0.0258]), 0.02)
    assert bound["neyman_bands"] <= bound["ppi_bands"] <= bound["ppi_binary"] + 1
    assert bound["neyman_bands"] == pytest.approx(
        Z**2 * float(w @ np.sqrt(p * (1 - p))) ** 2 / 0.02**2, abs=0.1
    )


@pytest.mark.parametrize(
    ("prevalence", "fnr", "fpr", "total", "miss_scale", "clean"),
    [
        (0.01, 0.5, 0.05, 60, 25.0, "all"),  # the weakest cells of benchmarks/score_band_coverage.py
        (0.01, 0.5, 0.005, 300, 25.0, "all"),
        (0.05, 0.5, 0.05, 60, 10.0, "low_em"),
        (0.2, 0.1, 0.05, 300, 10.0, "low_em"),
    ],
)
def test_seeded_coverage_of_the_score_band_design(
    prevalence: float, fnr: float, fpr: float, total: int, miss_scale: float, clean: str
) -> None:
    # 2,000 seeded replications: Monte Carlo SE ~0.005 at 0.95, so >= 0.92 leaves two SEs under the
    # benchmark's 0.93 target (which the 10,000-replication grid meets in all 96 cells, min 0.932).
    r = score_band_coverage(
        prevalence,
        fnr,
        fpr,
        total,
        reps=2000,
        seed=11,
        miss_scale=miss_scale,
        clean=clean,  # type: ignore[arg-type]
    )
    assert r.coverage >= 0.92, r.scenario
    assert np.all(np.array(r.scenario["allocation_labels"]) >= 2)


def test_the_coverage_check_can_fail() -> None:
    # The same design with a Wald interval per band under-covers at 1% prevalence: the check above
    # would catch an interval that ignores the small-sample penalty.
    from emaudit.calibration.two_phase import two_phase_arrays

    rng = np.random.default_rng(5)
    w, p = band_design(0.01, 0.5, 0.05, miss_scale=25.0, clean="all")
    n = halfwidth_allocation(np.round(w * 2000), p, total=60).n
    counts = rng.multinomial(2000, np.column_stack([w * p, w * (1 - p)]).ravel(), size=2000).reshape(
        2000, 3, 2
    )
    sizes, pos = counts.sum(axis=2), counts[:, :, 0]
    x = rng.hypergeometric(pos, sizes - pos, np.minimum(n, sizes))
    _, low, high = two_phase_arrays(sizes / 2000, x, np.minimum(n, sizes), interval="wald")
    truth = pos.sum(axis=1) / 2000
    assert float(np.mean((low <= truth) & (truth <= high))) < 0.9
