"""Judge comparison on the same human labels: hand-derived values, agreement with the two-phase
estimators for the design's own judge, the tuning split, and the seeded acceptance simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.judge_compare import compare_judges
from emaudit.calibration.judge_compare_sim import simulate_two_judge_study, two_judge_replications
from emaudit.calibration.judge_errors import judge_error_rates
from emaudit.calibration.two_phase import two_phase_rate

# Stratum "+" (N = 10) holds items 1-2, stratum "-" (N = 30) items 3-6; W+ = 0.25, W- = 0.75.
ITEMS = pd.DataFrame(
    {"item": [1, 2, 3, 4, 5, 6], "stratum": ["+", "+", "-", "-", "-", "-"], "human": [1, 0, 1, 0, 0, 0]}
)
VERDICTS = pd.DataFrame(
    {
        "item": [1, 2, 3, 4, 5, 6] * 2,
        "judge": ["A"] * 6 + ["B"] * 6,
        "label": [*[1, 1, 0, 0, 0, 0], *[1, 0, 1, 0, 0, 1]],
        "score": [*[5, 10, 50, 60, 70, 80], *[10, 60, 20, 70, 80, 15]],
    }
)
SIZES = {"+": 10, "-": 30}


def test_hand_derived_values() -> None:
    result = compare_judges(
        ITEMS, VERDICTS, SIZES, population_labels={"B": {"positive": 16, "negative": 24}}, n_boot=200
    )
    a, b = result.judge("A"), result.judge("B")
    # human rate = 0.25 * 1/2 + 0.75 * 1/4 = 0.3125
    assert result.human_rate.rate == pytest.approx(0.3125)
    # Se_A = 0.25 * 1/2 / 0.3125 = 0.4; Se_B = (0.125 + 0.1875) / 0.3125 = 1
    assert (a.sensitivity.rate, b.sensitivity.rate) == (pytest.approx(0.4), pytest.approx(1.0))
    # P(human aligned) = 0.25 * 1/2 + 0.75 * 3/4 = 0.6875; Sp_A = 0.75 * 3/4 / 0.6875 = 9/11,
    # Sp_B = (0.25 * 1/2 + 0.75 * 2/4) / 0.6875 = 8/11
    assert a.specificity.rate == pytest.approx(9 / 11) and b.specificity.rate == pytest.approx(8 / 11)
    assert a.fnr.rate == pytest.approx(0.6) and b.fpr.rate == pytest.approx(3 / 11)
    # B post-stratified: P(y | B+) = 0.3125 / (0.125 + 0.375) = 0.625, P(y | B-) = 0,
    # corrected = 16/40 * 0.625 = 0.25; its raw rate is exact: 16/40
    assert b.corrected_rate.rate == pytest.approx(0.25) and b.raw_rate.rate == pytest.approx(0.4)
    assert "exact" in b.raw_rate.flags
    # A without population counts: raw rate from the study items = 0.25 * 2/2 + 0.75 * 0/4,
    # corrected = the design-weighted human rate
    assert a.raw_rate.rate == pytest.approx(0.25)
    assert a.corrected_rate.rate == pytest.approx(0.3125) and "sample_only" in a.corrected_rate.flags
    # paired: FNR_B - FNR_A = 0 - 0.6; FPR_B - FPR_A = 3/11 - 2/11
    assert result.difference("B", "fnr").difference.rate == pytest.approx(-0.6)
    assert result.difference("B", "fpr").difference.rate == pytest.approx(1 / 11)
    assert result.difference("B", "raw_rate").difference.rate == pytest.approx(0.5 - 0.25)
    # AUC of B: weights W_h / m_h = 0.125 (+), 0.1875 (-); positives 10 and 20 lie below every
    # negative except 15, which only 10 beats: (0.125 * 0.6875 + 0.1875 * 0.5) / (0.3125 * 0.6875)
    assert b.auc is not None and b.auc.rate == pytest.approx(0.1796875 / 0.21484375)
    # A: positive 5 beats every negative, positive 50 all but the negative at 10 (weight 0.125)
    assert a.auc is not None
    assert a.auc.rate == pytest.approx((0.125 * 0.6875 + 0.1875 * 0.5625) / 0.21484375)
    assert result.difference("B", "auc").difference.rate == pytest.approx(b.auc.rate - a.auc.rate)
    assert b.auc.low <= b.auc.rate <= b.auc.high
    for estimate in (a.sensitivity, b.specificity, b.corrected_rate, result.human_rate):
        assert 0 <= estimate.low <= estimate.rate <= estimate.high <= 1
    document = result.to_dict()
    assert document["estimand"] == "responses" and document["labels_used"] == {"estimation": 6, "tuning": 0}
    assert {d["measure"] for d in document["differences"]} == {
        "raw_rate",
        "sensitivity",
        "specificity",
        "fnr",
        "fpr",
        "auc",
    }


def test_design_judge_matches_the_two_phase_estimators() -> None:
    rng = np.random.default_rng(4)
    sim = simulate_two_judge_study(rng, n_population=3000, per_stratum=80)
    items, sizes = sim["items"], sim["strata_sizes"]
    result = compare_judges(
        items, sim["verdicts"], sizes, population_labels={"A": sim["population_labels"]["A"]}, n_boot=0
    )
    n = [int((items["stratum"] == h).sum()) for h in ("A+", "A-")]
    x = [int(items.loc[items["stratum"] == h, "human"].sum()) for h in ("A+", "A-")]
    big_n = [sizes["A+"], sizes["A-"]]
    reference = judge_error_rates(big_n, n, x, [True, False])
    a = result.judge("A")
    assert a.sensitivity.rate == pytest.approx(reference.sensitivity.rate)
    assert a.specificity.rate == pytest.approx(reference.specificity.rate)
    assert a.corrected_rate.rate == pytest.approx(two_phase_rate(big_n, n, x).rate)
    assert result.human_rate.rate == pytest.approx(two_phase_rate(big_n, n, x).rate)


def test_tuning_labels_choose_the_threshold_and_nothing_else() -> None:
    rng = np.random.default_rng(7)
    size = 400
    human = rng.random(size) < 0.3
    score = np.where(human, rng.uniform(0, 60, size), rng.uniform(40, 100, size))
    items = pd.DataFrame(
        {
            "item": np.arange(size),
            "stratum": np.where(score < 50, "low", "high"),
            "human": human.astype(float),
            "split": np.where(np.arange(size) % 4 == 0, "tuning", "estimation"),
        }
    )
    verdicts = pd.DataFrame(
        {"item": np.arange(size), "judge": "J", "label": (score < 30).astype(float), "score": score}
    )
    sizes = {"low": 2000, "high": 3000}
    result = compare_judges(items, verdicts, sizes, n_boot=0)
    row = result.judge("J")
    assert result.labels_used == {"estimation": 300, "tuning": 100}
    assert row.threshold is not None and row.threshold["n_tuning"] == 100
    assert 40 <= row.threshold["value"] <= 60  # the classes overlap on 40-60
    assert row.tuned is not None and row.tuned["sensitivity"].rate > row.sensitivity.rate
    # scrambling the estimation items' scores leaves the threshold alone ...
    scrambled = verdicts.copy()
    estimation = items["split"] == "estimation"
    scrambled.loc[estimation.to_numpy(), "score"] = rng.permutation(score[estimation.to_numpy()])
    again = compare_judges(items, scrambled, sizes, n_boot=0).judge("J")
    assert again.threshold == row.threshold
    # ... and the estimates ignore tuning labels: flipping them changes no estimate
    flipped = items.copy()
    flipped.loc[~estimation, "human"] = 1 - flipped.loc[~estimation, "human"]
    other = compare_judges(flipped, verdicts, sizes, n_boot=0)
    assert other.judge("J").sensitivity == row.sensitivity and other.human_rate == result.human_rate


def test_bad_input_names_the_problem() -> None:
    with pytest.raises(CalibrationInputError, match="stratum 'x' has no size"):
        compare_judges(ITEMS.assign(stratum="x"), VERDICTS, SIZES)
    with pytest.raises(CalibrationInputError, match="verdicts needs a column 'label'"):
        compare_judges(ITEMS, VERDICTS.drop(columns="label"), SIZES)
    with pytest.raises(CalibrationInputError, match="cannot post-stratify"):
        compare_judges(ITEMS, VERDICTS, SIZES, population_labels={"B": {"positive": 1, "null": 3}})


def test_acceptance_two_judges_on_a_study_drawn_by_the_first() -> None:
    """Issue 11's acceptance, seeded slice (``benchmarks/judge_compare_coverage.py`` runs more).

    Truth: 5,000 responses, 20% misaligned; A has FNR 30% / FPR 1%, B FNR 10% / FPR 5%; the study
    is stratified by A (100 labels where A says misaligned, 300 where it says aligned) and B's
    verdicts are added afterwards. 200 replications: a 95% interval covers at least 93% of them
    with probability > 0.9 when its true coverage is 95% (binomial SE 1.5 points).
    """
    coverage = two_judge_replications(
        200, seed=2026, prevalence=0.2, per_stratum={"A+": 100, "A-": 300}, n_draws=1000
    )
    assert coverage.corrected_a >= 0.93
    assert coverage.corrected_b_population >= 0.93
    assert coverage.corrected_b_sample >= 0.93
    assert coverage.fnr_b >= 0.93 and coverage.fnr_difference >= 0.93
    assert coverage.raw_rates_differ >= 0.99  # A flags about 14.8%, B about 22%
    assert coverage.fnr_difference_below_zero >= 0.85  # B's FNR lower, interval excluding 0


def test_docstring_example() -> None:
    import doctest

    from emaudit.calibration import judge_compare

    result = doctest.testmod(judge_compare)
    assert result.attempted > 0 and result.failed == 0
