"""Seeded Monte Carlo coverage of the corrected-rate and judge-error intervals.

Tolerance: the issue's acceptance level is coverage >= 0.93 for a nominal 95% interval. With 2,000
replications the Monte Carlo standard error at 95% is 0.0049, so 0.93 sits four standard errors below
nominal; every run is seeded, so the outcome is deterministic. The whole acceptance grid (48 cells) takes
well under a second vectorised, so CI runs all of it; benchmarks/coverage_grid.py adds more replications,
larger populations and the phase-1 variant.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from emaudit.calibration import judge_error_rates, simulate_two_phase_counts, two_phase_coverage

GRID = list(itertools.product([0.01, 0.05, 0.2], [0.1, 0.5], [0.005, 0.05], [20, 100], ["equal", "neyman"]))
REPS = 2000
MIN_COVERAGE = 0.93


def test_two_phase_mover_wilson_covers_on_the_whole_grid() -> None:
    results = [
        two_phase_coverage(prev, fnr, fpr, n, alloc, N=2000, reps=REPS, seed=i)  # type: ignore[arg-type]
        for i, (prev, fnr, fpr, n, alloc) in enumerate(GRID)
    ]
    low = [(r.scenario, r.coverage) for r in results if r.coverage < MIN_COVERAGE]
    assert not low, f"cells below {MIN_COVERAGE}: {low}"
    assert all(r.reps == REPS for r in results)
    # Not absurdly conservative either: the grid's median coverage stays near nominal.
    assert 0.95 <= float(np.median([r.coverage for r in results])) <= 0.985


def test_plain_wilson_inside_mover_undercovers_where_documented() -> None:
    # Why the default uses the modified Wilson limits: at 1% prevalence, 50% FNR, 20 labels per stratum
    # plain Wilson's lower limit at x = 1 excludes the truth too often.
    plain = two_phase_coverage(
        0.01, 0.5, 0.005, 20, "equal", reps=REPS, seed=11, interval="mover_wilson_plain"
    )
    modified = two_phase_coverage(0.01, 0.5, 0.005, 20, "equal", reps=REPS, seed=11)
    assert plain.coverage < MIN_COVERAGE <= modified.coverage


def test_wald_undercovers_at_low_prevalence() -> None:
    wald = two_phase_coverage(0.01, 0.5, 0.005, 20, "equal", reps=REPS, seed=12, interval="wald")
    assert wald.coverage < 0.9


def test_neyman_is_narrower_than_equal_at_low_prevalence() -> None:
    eq = two_phase_coverage(0.01, 0.1, 0.005, 100, "equal", reps=REPS, seed=13)
    ney = two_phase_coverage(0.01, 0.1, 0.005, 100, "neyman", reps=REPS, seed=13)
    assert ney.mean_width < eq.mean_width


@pytest.mark.parametrize(("prevalence", "fnr", "fpr"), [(0.2, 0.1, 0.05), (0.05, 0.5, 0.05)])
def test_sensitivity_interval_covers(prevalence: float, fnr: float, fpr: float) -> None:
    # Slice: 500 replications (each calls judge_error_rates). Target: the superpopulation sensitivity
    # 1 - FNR (phase-1 term included). Measured ~0.92-0.93 when the judge-negative stratum has only 2-3
    # human positives per 100 labels (few-event regime); tolerance 0.90 = 0.05 below nominal, about
    # 5 MC standard errors (0.0097). This is a known limit, not the two-phase acceptance criterion.
    rng = np.random.default_rng(21)
    reps = simulate_two_phase_counts(500, 5000, prevalence, fnr, fpr, lambda s: np.full(s.shape, 100), rng)
    hits = 0
    for N, n, x in zip(reps.N, reps.n, reps.x, strict=True):
        se = judge_error_rates(N, n, x, [True, False]).sensitivity
        hits += se.low <= 1 - fnr <= se.high
    assert hits / 500 >= 0.90


def test_mover_jeffreys_covers_on_the_whole_grid_but_not_enough_for_a_new_default() -> None:
    # Issue 10 pt 1: MOVER with modified Jeffreys limits (Brown, Cai & DasGupta 2001) is selectable and
    # holds the 0.93 acceptance level in every cell (prevalence 1% included), with a narrower mean width
    # than MOVER-Wilson. It is not the default: benchmarks/coverage_grid.py (10,000 reps, N = 2,000 and
    # 20,000) measured min 0.9402 (N = 20,000, prevalence 5%, FNR 50%, Neyman), below the 0.945 required.
    results = [
        two_phase_coverage(
            prev,
            fnr,
            fpr,
            n,
            alloc,
            N=2000,
            reps=REPS,
            seed=i,
            interval="mover_jeffreys",  # type: ignore[arg-type]
        )
        for i, (prev, fnr, fpr, n, alloc) in enumerate(GRID)
    ]
    wilson = [
        two_phase_coverage(prev, fnr, fpr, n, alloc, N=2000, reps=REPS, seed=i)  # type: ignore[arg-type]
        for i, (prev, fnr, fpr, n, alloc) in enumerate(GRID)
    ]
    low = [(r.scenario, r.coverage) for r in results if r.coverage < MIN_COVERAGE]
    assert not low, f"cells below {MIN_COVERAGE}: {low}"
    assert all(r.scenario["interval"] == "mover_jeffreys" for r in results)
    assert np.mean([r.mean_width for r in results]) < np.mean([r.mean_width for r in wilson])
    # The 0.945 bar for a default is not met everywhere in this seeded slice either.
    assert min(r.coverage for r in results) < 0.945
