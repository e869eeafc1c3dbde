"""MOVER differences of independent rates: Newcombe's worked examples, hand arithmetic, coverage."""

from __future__ import annotations

import numpy as np
import pytest

from emaudit.calibration import two_phase_rate, wilson_ci
from emaudit.calibration.contrasts import mover_difference
from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.estimate import Estimate
from emaudit.calibration.simulation import simulate_two_phase_counts


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        # Newcombe (1998) Stat. Med. 17:873, Table II, method 10 (Wilson score hybrid), to 4 decimals.
        ((56, 70), (48, 80), (0.0524, 0.3339)),
        ((9, 10), (3, 10), (0.1705, 0.8090)),
        ((5, 56), (0, 29), (-0.0381, 0.1926)),
    ],
)
def test_newcombe_method_10_worked_examples(
    first: tuple[int, int], second: tuple[int, int], expected: tuple[float, float]
) -> None:
    result = mover_difference(wilson_ci(*first), wilson_ci(*second))
    assert (result.low, result.high) == pytest.approx(expected, abs=5e-5)
    assert result.method == "mover(wilson)"


def test_hand_derived_limits_keep_each_input_asymmetry() -> None:
    # d = 0.3 - 0.1 = 0.2
    # L = 0.2 - sqrt((0.3 - 0.2)^2 + (0.2 - 0.1)^2) = 0.2 - sqrt(0.02) = 0.0585786437...
    # U = 0.2 + sqrt((0.45 - 0.3)^2 + (0.1 - 0.05)^2) = 0.2 + sqrt(0.025) = 0.3581138830...
    result = mover_difference(
        Estimate(0.3, 0.2, 0.45, "m"), Estimate(0.1, 0.05, 0.2, "m"), estimand="responses"
    )
    assert result.difference == pytest.approx(0.2, abs=1e-15)
    assert result.low == pytest.approx(0.2 - 0.02**0.5, abs=1e-12)
    assert result.high == pytest.approx(0.2 + 0.025**0.5, abs=1e-12)
    assert (result.method, result.estimand) == ("mover(m)", "responses")


def test_refuses_mixed_confidence_and_broken_intervals() -> None:
    with pytest.raises(CalibrationInputError, match="one confidence"):
        mover_difference(Estimate(0.3, 0.2, 0.4, "m", 0.95), Estimate(0.1, 0.0, 0.2, "m", 0.9))
    with pytest.raises(CalibrationInputError, match="outside its interval"):
        mover_difference(Estimate(0.5, 0.2, 0.4, "m"), Estimate(0.1, 0.0, 0.2, "m"))


def test_difference_of_two_phase_rates_covers_in_a_seeded_simulation() -> None:
    """Two independent judge-stratified cells (prevalence 25% vs 5%, judge FNR 30%, FPR 4%).

    Target: the difference of the two cells' rates among these responses (the two-phase estimand).
    1,000 replications: the binomial SE of a 95% coverage is 0.7 points; require >= 93%.
    """
    rng = np.random.default_rng(12)
    reps = 1000

    def allocate(sizes: np.ndarray) -> np.ndarray:
        return np.full_like(sizes, 30)

    cells = [simulate_two_phase_counts(reps, 400, p, 0.30, 0.04, allocate, rng) for p in (0.25, 0.05)]
    covered = 0
    for r in range(reps):
        a, b = (two_phase_rate(c.N[r], c.n[r], c.x[r]) for c in cells)
        truth = cells[0].true_rate[r] - cells[1].true_rate[r]
        result = mover_difference(a, b)
        covered += result.low <= truth <= result.high
    assert covered / reps >= 0.93
