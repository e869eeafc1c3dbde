"""Hand-derived values and degenerate inputs for the estimators (no reference file needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from emaudit.calibration import (
    CalibrationInputError,
    InconsistentCalibrationError,
    UncorrectableJudgeError,
    judge_error_rates,
    judge_error_rates_from_confusion,
    ppi_rate,
    rogan_gladen_rate,
    two_phase_rate,
)
from emaudit.calibration.binomial import wilson_bounds

Z = norm.ppf(0.975)


def test_two_phase_point_and_wald_by_hand() -> None:
    # w = [0.1, 0.9]; p = [30/40, 4/80] = [0.75, 0.05]; rate = 0.075 + 0.045 = 0.12
    # var = 0.01*0.75*0.25/40 + 0.81*0.05*0.95/80 = 4.6875e-5 + 4.809375e-4 = 5.278125e-4
    est = two_phase_rate([100, 900], [40, 80], [30, 4], interval="wald", fpc=False)
    assert est.rate == pytest.approx(0.12, abs=1e-12)
    se = math.sqrt(5.278125e-4)
    assert (est.low, est.high) == pytest.approx((0.12 - Z * se, 0.12 + Z * se), abs=1e-12)
    # With the finite-population correction (default): each term times 1 - n_j/N_j:
    # 4.6875e-5 * (1 - 40/100) + 4.809375e-4 * (1 - 80/900) = 2.8125e-5 + 4.381875e-4 = 4.663125e-4
    fpc = two_phase_rate([100, 900], [40, 80], [30, 4], interval="wald")
    se = math.sqrt(4.663125e-4)
    assert (fpc.low, fpc.high) == pytest.approx((0.12 - Z * se, 0.12 + Z * se), abs=1e-12)
    assert fpc.method == "two_phase_wald_fpc"


def test_two_phase_mover_by_hand_from_wilson_limits() -> None:
    # MOVER: L = p - sqrt(sum w^2 (p_j - l_j)^2), U = p + sqrt(sum w^2 (u_j - p_j)^2), Wilson l_j, u_j.
    low_j, high_j = wilson_bounds(np.array([30.0, 40.0]), np.array([40.0, 80.0]))
    w, p = np.array([0.25, 0.75]), np.array([0.75, 0.5])
    est = two_phase_rate([250, 750], [40, 80], [30, 40], fpc=False)
    assert est.rate == pytest.approx(0.5625)
    assert est.low == pytest.approx(0.5625 - math.sqrt(np.sum(w**2 * (p - low_j) ** 2)), abs=1e-12)
    assert est.high == pytest.approx(0.5625 + math.sqrt(np.sum(w**2 * (high_j - p) ** 2)), abs=1e-12)


def test_two_phase_allocation_does_not_bias_the_estimate() -> None:
    # Same stratum rates, different allocations (equal, proportional, Neyman-like): same point estimate.
    N = [100, 900]
    for n in ([50, 50], [10, 90], [40, 60]):
        x = [int(0.6 * n[0]), int(0.1 * n[1])]
        assert two_phase_rate(N, n, x).rate == pytest.approx(0.1 * 0.6 + 0.9 * 0.1)


def test_two_phase_zero_events_stays_in_unit_interval() -> None:
    est = two_phase_rate([30, 970], [20, 20], [0, 0])
    assert est.rate == 0.0 and est.low == 0.0
    assert 0 < est.high < 0.2
    assert "clipped" not in est.flags


def test_two_phase_census_flag_and_empty_stratum_ignored() -> None:
    est = two_phase_rate([10, 0, 20], [10, 0, 20], [5, 0, 2])
    assert est.rate == pytest.approx((5 + 2) / 30)
    assert "census" in est.flags


def test_two_phase_census_is_exact_with_zero_width() -> None:
    # The example: every response of both strata labelled -> 0.2 * 8/10 + 0.8 * 1/40 = 0.18 exactly
    # (was [0.115, 0.269] without the finite-population correction).
    est = two_phase_rate([10, 40], [10, 40], [8, 1])
    assert est.rate == pytest.approx(0.18, abs=1e-12)
    assert est.low == pytest.approx(0.18, abs=1e-12) and est.high == pytest.approx(0.18, abs=1e-12)
    assert est.width == pytest.approx(0.0, abs=1e-12) and "census" in est.flags
    old = two_phase_rate([10, 40], [10, 40], [8, 1], fpc=False)
    assert (round(old.low, 3), round(old.high, 3)) == (0.115, 0.269)
    # A census stratum contributes no sampling variance: only the sampled stratum's limits remain.
    part = two_phase_rate([10, 400], [10, 40], [8, 1])
    alone_low, alone_high = wilson_bounds(np.array([1.0]), np.array([40.0]), modified=True)
    g = math.sqrt(1 - 40 / 400)
    w = 400 / 410
    assert part.low == pytest.approx(part.rate - w * g * (1 / 40 - alone_low[0]), abs=1e-12)
    assert part.high == pytest.approx(part.rate + w * g * (alone_high[0] - 1 / 40), abs=1e-12)
    # The superpopulation claim (phase1) keeps sampling variance even for a census.
    assert two_phase_rate([10, 40], [10, 40], [8, 1], phase1=True).width > 0


def test_two_phase_phase1_widens() -> None:
    base = two_phase_rate([200, 800], [50, 100], [40, 10])
    wide = two_phase_rate([200, 800], [50, 100], [40, 10], phase1=True)
    assert wide.low < base.low and wide.high > base.high and wide.method.endswith("_phase1")


@pytest.mark.parametrize(
    ("N", "n", "x", "message"),
    [
        ([100, 900], [0, 50], [0, 3], "no human labels"),
        ([0, 0], [0, 0], [0, 0], "empty cell"),
        ([10, 900], [20, 50], [1, 3], "exceeds N_per_stratum"),
        ([100, 900], [20, 50], [21, 3], "exceeds n_labelled"),
        ([100, 900], [20], [1], "lengths differ"),
        ([100, 900.5], [20, 50], [1, 3], "whole counts"),
        ([100, float("nan")], [20, 50], [1, 3], "NaN"),
    ],
)
def test_two_phase_rejects_bad_input(N: list[float], n: list[int], x: list[int], message: str) -> None:
    with pytest.raises(CalibrationInputError, match=message):
        two_phase_rate(N, n, x)


def test_rogan_gladen_by_hand_and_refusals() -> None:
    # theta = (0.25 + 0.95 - 1) / (0.8 + 0.95 - 1) = 0.2 / 0.75
    assert rogan_gladen_rate(0.25, 500, 0.8, 100, 0.95, 300).rate == pytest.approx(0.2 / 0.75)
    with pytest.raises(UncorrectableJudgeError, match="Youden"):
        rogan_gladen_rate(0.3, 500, 0.5, 100, 0.5, 100)  # J = 0
    with pytest.raises(UncorrectableJudgeError, match="Youden"):
        rogan_gladen_rate(0.3, 500, 0.4, 100, 0.5, 100)  # J < 0
    with pytest.raises(UncorrectableJudgeError):
        rogan_gladen_rate(0.3, 500, 0.56, 10, 0.5, 10)  # J = 0.06 but its lower limit is below 0
    with pytest.raises(CalibrationInputError, match="n_pos"):
        rogan_gladen_rate(0.3, 500, 0.9, 0, 0.9, 10)


def test_rogan_gladen_refuses_a_judge_rate_below_its_false_positive_rate() -> None:
    # Was: clipped to [0, 0]. q below the false positive rate: (0.02 + 0.95 - 1) / 0.85 < 0, so the
    # pool's Sp cannot hold in this cell (issue 9, point 4): refuse instead of reporting [0, 0].
    with pytest.raises(InconsistentCalibrationError, match="below 1 - specificity"):
        rogan_gladen_rate(0.02, 1000, 0.9, 200, 0.95, 400)
    with pytest.raises(InconsistentCalibrationError, match="above sensitivity"):
        rogan_gladen_rate(0.95, 1000, 0.9, 200, 0.95, 400)


def test_rogan_gladen_clips_only_the_limits_with_flag() -> None:
    # q just above 1 - Sp: theta = (0.06 + 0.95 - 1) / 0.85 = 0.01176 > 0, and the lower limit < 0.
    est = rogan_gladen_rate(0.06, 200, 0.9, 50, 0.95, 100)
    assert est.rate == pytest.approx(0.01 / 0.85) and est.low == 0.0 and "clipped" in est.flags


def test_judge_errors_multi_stratum_bayes_inversion_by_hand() -> None:
    # Strata: judge-misaligned (W=.1, p=.8), aligned (W=.8, p=.05), incoherent (W=.1, p=.2).
    # Se = .08 / (.08 + .04 + .02) = 4/7; Sp = (.76 + .08) / (.02 + .76 + .08) = .84/.86.
    r = judge_error_rates([100, 800, 100], [50, 100, 50], [40, 5, 10], [True, False, False])
    assert r.sensitivity.rate == pytest.approx(4 / 7)
    assert r.specificity.rate == pytest.approx(0.84 / 0.86)
    assert r.fnr.rate == pytest.approx(3 / 7) and r.fpr.rate == pytest.approx(0.02 / 0.86)
    assert r.ppv.rate == pytest.approx(0.8)
    assert r.npv.rate == pytest.approx(1 - (0.04 + 0.02) / 0.9)
    for est in (r.sensitivity, r.specificity, r.ppv, r.npv):
        assert est.low < est.rate < est.high


def test_judge_errors_zero_events_use_seeded_bootstrap() -> None:
    r = judge_error_rates([100, 900], [40, 40], [30, 0])
    assert r.sensitivity.rate == 1.0 and r.sensitivity.high == 1.0
    assert 0.5 < r.sensitivity.low < 1.0
    assert r.sensitivity.method == "bayes_inversion_jeffreys_bootstrap"
    assert "few_events" in r.sensitivity.flags
    again = judge_error_rates([100, 900], [40, 40], [30, 0])
    assert again.sensitivity.low == r.sensitivity.low  # seeded


def test_judge_errors_undefined_cases() -> None:
    with pytest.raises(CalibrationInputError, match="sensitivity is undefined"):
        judge_error_rates([100, 900], [40, 40], [0, 0])
    with pytest.raises(CalibrationInputError, match="specificity is undefined"):
        judge_error_rates([100, 900], [40, 40], [40, 40])
    with pytest.raises(CalibrationInputError, match="judge_positive"):
        judge_error_rates([100, 900, 5], [40, 40, 5], [3, 1, 0])


def test_judge_errors_from_confusion_simple_random_sample() -> None:
    r = judge_error_rates_from_confusion(tp=45, fn=5, fp=10, tn=140)
    assert r.sensitivity.rate == pytest.approx(0.9) and r.specificity.rate == pytest.approx(140 / 150)
    assert r.ppv.rate == pytest.approx(45 / 55) and r.npv.rate == pytest.approx(140 / 145)
    with pytest.raises(CalibrationInputError, match="human-positive"):
        judge_error_rates_from_confusion(0, 0, 3, 10)


def test_ppi_rate_by_hand() -> None:
    # lam fixed at 1: theta = mean(fu) + mean(y - f) = 0.25 + (0.5 - 0.5) = 0.25
    y, f, fu = [1, 0, 1, 0], [1, 0, 0, 1], [1, 0, 0, 0] * 5
    est = ppi_rate(y, f, fu, lam=1.0)
    assert est.rate == pytest.approx(0.25)
    # var = 1 * 0.1875 / 20 + var([0, 0, 1, -1]) / 4 = 0.009375 + 0.5/4
    se = math.sqrt(0.009375 + 0.125)
    assert est.high == pytest.approx(0.25 + Z * se) and est.low == 0.0 and "clipped" in est.flags


def test_ppi_rate_matches_ppi_py() -> None:
    ppi_py = pytest.importorskip(
        "ppi_py", reason="ppi_py (package ppi-python, the bench extra) not installed"
    )
    rng = np.random.default_rng(3)
    y = (rng.random(400) < 0.12).astype(float)
    score = np.clip(y * 0.6 + rng.normal(0.2, 0.2, 400), 0, 1)  # a continuous judge score
    unl = np.clip((rng.random(20_000) < 0.12) * 0.6 + rng.normal(0.2, 0.2, 20_000), 0, 1)
    ours = ppi_rate(y, score, unl)
    low, high = ppi_py.ppi_mean_ci(y, score, unl, alpha=0.05)
    assert (ours.low, ours.high) == pytest.approx((low[0], high[0]), abs=1e-10)
    assert ours.rate == pytest.approx(ppi_py.ppi_mean_pointestimate(y, score, unl)[0], abs=1e-10)


def test_ppi_rejects_mismatched_input() -> None:
    with pytest.raises(CalibrationInputError, match="one value per labelled item"):
        ppi_rate([1, 0, 1], [1, 0], [0, 1, 1])


def test_ppi_all_zero_labels_fall_back_to_an_exact_interval() -> None:
    # Y all 0 and Yhat all 0 on the labelled items: the CLT variance is 0 (a zero-width [0, 0] before).
    # Clopper-Pearson for 0/40: upper = 1 - 0.025^(1/40) = 0.088110.
    est = ppi_rate([0] * 40, [0] * 40, [0, 1] * 500)
    assert est.rate == 0.0 and est.low == 0.0
    assert est.high == pytest.approx(1 - 0.025 ** (1 / 40), abs=1e-9)
    assert est.method == "clopper_pearson" and "constant_labels" in est.flags
    ones = ppi_rate([1] * 20, [1] * 20, [1, 0] * 50)
    assert ones.high == 1.0 and ones.low == pytest.approx(0.025 ** (1 / 20), abs=1e-9)


def test_modified_jeffreys_bounds_hand_values() -> None:
    # Brown, Cai & DasGupta (2001) §4.1.2, n = 20, 95%: L(0) = L(1) = 0; U(0) = 1 - 0.025^(1/20)
    # = 1 - exp(-3.688879 / 20) = 0.168433 (Clopper-Pearson); U(19) = U(20) = 1; L(20) = 0.831567.
    # Interior x = 5: the Beta(5.5, 15.5) 2.5% and 97.5% quantiles.
    from scipy.stats import beta

    from emaudit.calibration.binomial import jeffreys_bounds

    low, high = jeffreys_bounds([0, 1, 5, 19, 20], [20] * 5)
    assert low[:2].tolist() == [0.0, 0.0] and high[3:].tolist() == [1.0, 1.0]
    assert high[0] == pytest.approx(0.168433, abs=1e-6)
    assert low[4] == pytest.approx(0.831567, abs=1e-6)
    assert (low[2], high[2]) == pytest.approx((beta.ppf(0.025, 5.5, 15.5), beta.ppf(0.975, 5.5, 15.5)))
    assert 0.10 < low[2] < 0.11  # 0.1024 by the quantile, vs Wilson's 0.1119: not pulled towards 1/2
