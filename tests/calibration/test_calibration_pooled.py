"""The pooled calibration across cells (``calibrate --method pooled``, issue 10 point 3).

Tested three ways: hand-derived values (arithmetic in the comments), the published Lang-Reiczigel /
Lee et al. worked example, and a seeded Monte Carlo slice of ``benchmarks/pooled_coverage.py``
(coverage when transfer holds; the warning when it does not).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from emaudit.calibration import calibrate_document, simulate
from emaudit.calibration.errors import CalibrationInputError, UncorrectableJudgeError
from emaudit.calibration.estimate import Estimate
from emaudit.calibration.pooled import (
    METHOD,
    PooledCalibration,
    effective_sizes,
    pooled_judge_errors,
    pooled_rogan_gladen_rate,
)
from emaudit.calibration.pooled_sim import pooled_coverage
from emaudit.calibration.report_view import read_document
from tests.conftest import VECTORS, requires_shared


def _pool(se: float, m1: float, sp: float, m0: float) -> PooledCalibration:
    return PooledCalibration(Estimate(se, se, se, "given"), Estimate(sp, sp, sp, "given"), m1, m0, m1 + m0, 2)


def test_pooled_error_rates_are_design_weighted_not_raw_counts() -> None:
    # Two cells, strata (cell1 judge+, cell1 judge-, cell2 judge+, cell2 judge-):
    # N = 100, 900, 50, 950 (N = 2000) -> W = 0.05, 0.45, 0.025, 0.475; 50 labels each;
    # x = 40, 5, 20, 3 -> p = 0.8, 0.1, 0.4, 0.06.
    # A = 0.05*0.8 + 0.025*0.4 = 0.05;  B = 0.45*0.1 + 0.475*0.06 = 0.0735;  Se = 0.05/0.1235 = 0.404858
    # C = 0.45*0.9 + 0.475*0.94 = 0.8515;  D = 0.05*0.2 + 0.025*0.6 = 0.025;  Sp = 0.8515/0.8765 = 0.971478
    pool = pooled_judge_errors([100, 900, 50, 950], [50] * 4, [40, 5, 20, 3], [True, False, True, False])
    assert pool.sensitivity.rate == pytest.approx(0.05 / 0.1235, abs=1e-12)
    assert pool.specificity.rate == pytest.approx(0.8515 / 0.8765, abs=1e-12)
    # The plain pooled count of the stratified sample, (40 + 20) / (40 + 5 + 20 + 3) = 0.882, would be
    # more than twice the judge's sensitivity: the judge-positive strata are over-sampled 10-20x.
    assert 2 * pool.sensitivity.rate < (40 + 20) / 68
    assert pool.n_labelled == 200 and pool.n_strata == 4


def test_effective_sizes_by_hand() -> None:
    # One cell, N = 100 / 900, 50 labels each, x = 40 / 10 (>= 5 events: the stratum p's are used).
    # W = 0.1, 0.9; p = 0.8, 0.2; A = 0.08, B = 0.18, Se = 0.08 / 0.26 = 0.307692.
    # dSe/dp+ = W+ B / (A+B)^2 = 0.1*0.18/0.0676 = 0.266272; dSe/dp- = -W- A/(A+B)^2 = -1.065089.
    # Var(p) = 0.8*0.2/50 = 0.0032 in both -> phase 2: (0.266272^2 + 1.065089^2) * 0.0032 = 0.0038574.
    # Phase 1: g = dSe/dW = p+ B/(A+B)^2 = 2.130178, -p- A/(A+B)^2 = -0.236686; sum W g = 0;
    #   sum W g^2 = 0.1*4.537657 + 0.9*0.056020 = 0.504184; / N = 1000 -> 0.000504.
    # Var(Se) = 0.0043616; m1 = 0.307692 * 0.692308 / 0.0043616 = 48.84.
    m1, m0 = effective_sizes([100, 900], [50, 50], [40, 10], [True, False])
    assert float(m1) == pytest.approx(0.307692 * 0.692308 / 0.0043616, rel=2e-4)
    # Sp = C / (C + D), C = 0.9*0.8 = 0.72, D = 0.1*0.2 = 0.02, Sp = 0.972973.
    # dSp/dp- = -W- D/(C+D)^2 = -0.9*0.02/0.5476 = -0.032871; dSp/dp+ = W+ C/(C+D)^2 = 0.131483.
    # phase 2: (0.032871^2 + 0.131483^2) * 0.0032 = 5.8779e-5; phase 1: g = (1-p) D/(C+D)^2 = 0.029218
    # (judge-), -(1-p) C/(C+D)^2 = -0.262966 (judge+); sum W g = 0; sum W g^2 = 0.9*0.000854 +
    # 0.1*0.069151 = 0.007684 -> / 1000 = 7.684e-6. Var(Sp) = 6.6463e-5; m0 = 0.972973*0.027027/6.6463e-5.
    assert float(m0) == pytest.approx(0.972973 * 0.027027 / 6.6463e-5, rel=2e-3)


def test_a_pool_without_false_negatives_still_has_a_finite_effective_size() -> None:
    # 0 human positives in every judge-negative stratum: p(1-p) = 0 there would make Se look exact.
    m1, _ = effective_sizes([50, 950, 60, 940], [20] * 4, [15, 0, 16, 0], [True, False, True, False])
    assert 0 < float(m1) < 40


@requires_shared
def test_reduces_to_the_published_lang_reiczigel_example() -> None:
    # Lee et al. (2025, README of UW-Madison-Lee-Lab/LLM-judge-reporting): p = 0.4, n = 1000,
    # q1 (Se) = 0.9, q0 (Sp) = 0.7, m0 = m1 = 200; Lang & Reiczigel (2014) interval, the value in
    # ../shared/vectors. With effective sizes equal to the counts the pooled path is that interval.
    block = json.loads(VECTORS.read_text())["rogan_gladen_lang_reiczigel"]
    est = pooled_rogan_gladen_rate(0.4, 1000, _pool(0.9, 200, 0.7, 200))
    assert est.rate == pytest.approx(block["corrected_rate"], abs=1e-9)
    assert (est.low, est.high) == pytest.approx(block["lang_reiczigel_95"], abs=1e-9)
    assert est.method == METHOD and est.estimand == "responses" and est.flags == ()


def test_rogan_gladen_by_hand_clipping_and_refusal() -> None:
    # theta = (q + Sp - 1) / (Se + Sp - 1) = (0.1 + 0.95 - 1) / 0.75 = 0.066667
    assert pooled_rogan_gladen_rate(0.1, 1000, _pool(0.8, 100, 0.95, 900)).rate == pytest.approx(0.05 / 0.75)
    # q below the pooled FPR (0.048 < 0.05): clipped to 0 with a flag, not refused, the upper limit above 0.
    low = pooled_rogan_gladen_rate(0.048, 2000, _pool(0.8, 30, 0.95, 900))
    assert low.rate == 0.0 and low.low == 0.0 and low.high > 0 and low.flags == ("clipped",)
    # q = 0 with a pooled FPR of 0.05 over 900 effective negatives: even the upper limit is below 0
    # (the pool contradicts the cell); flagged, and apply_pooled reports no [0, 0] interval for it.
    assert "contradicts_pool" in pooled_rogan_gladen_rate(0.0, 2000, _pool(0.8, 30, 0.95, 900)).flags
    assert "contradicts_pool" not in low.flags
    with pytest.raises(UncorrectableJudgeError, match=r"Se \+ Sp - 1 = 0\.000"):
        pooled_rogan_gladen_rate(0.3, 500, _pool(0.5, 100, 0.5, 100))
    with pytest.raises(UncorrectableJudgeError, match="per-cell design"):
        pooled_rogan_gladen_rate(0.3, 500, _pool(0.4, 100, 0.5, 100))
    with pytest.raises(CalibrationInputError, match="judge_rate"):
        pooled_rogan_gladen_rate(1.3, 500, _pool(0.8, 100, 0.9, 100))


# (prevalence of the cells, sensitivity, FPR, N per cell, labels per stratum): a slice of the benchmark
# grid, prevalence 1% included, with cells whose prevalences differ (transfer holds: one Se/FPR).
SLICE = [
    ([0.01] * 6 + [0.005, 0.02], 0.9, 0.005, 2000, 20),
    # 20,000 answers per cell: the false-negative count of the pool is 0 or 1 event; Lang-Reiczigel's
    # normal term alone covered 0.91 here, the few-event MOVER limits hold it (error_count_limits)
    ([0.01] * 6 + [0.005, 0.02], 0.9, 0.005, 20_000, 20),
    ([0.01] * 6 + [0.005, 0.02], 0.5, 0.05, 2000, 20),
    ([0.05] * 6 + [0.025, 0.1], 0.5, 0.05, 2000, 20),
    ([0.2] * 4, 0.5, 0.005, 500, 20),
]


@pytest.mark.parametrize("scenario", SLICE)
def test_coverage_when_transfer_holds(scenario: tuple[Any, ...]) -> None:
    prevalence, se, fpr, N, n = scenario
    result = pooled_coverage(prevalence, se, fpr, N, n, reps=1500, seed=7)
    # Tolerance: >= 0.93 in every cell (the acceptance of issue 10); at 1,500 replications the Monte
    # Carlo SE is about 0.006, and the benchmark's full grid measured >= 0.945 in every cell.
    assert result.refused == 0.0
    assert result.min_coverage >= 0.93, result.coverage
    # and the point of pooling: far narrower than the per-cell two-phase interval on the same labels
    assert np.mean(result.mean_width) < 0.8 * np.mean(result.two_phase_width)


def test_coverage_check_can_fail_when_transfer_is_violated() -> None:
    # One cell's judge has FPR 15% instead of 2%: the pool's Sp is wrong for every cell, and coverage
    # collapses, which is why the transfer test exists.
    result = pooled_coverage([0.05] * 8, 0.8, [0.02] * 7 + [0.15], 2000, 40, reps=500, seed=3)
    assert result.min_coverage < 0.5


def test_transfer_warning_fires_and_names_the_cell_that_differs() -> None:
    violated = pooled_coverage(
        [0.05] * 8, 0.8, [0.02] * 7 + [0.15], 2000, 40, reps=30, seed=3, transfer_reps=30
    )
    assert violated.warning_rate == 1.0 and violated.flagged_rate[7] == 1.0
    holds = pooled_coverage([0.05] * 8, 0.8, 0.02, 2000, 40, reps=30, seed=3, transfer_reps=30)
    # Bonferroni over 16 comparisons: a family-wise false warning rate <= 5% (at most 3 of 30 runs here)
    assert holds.warning_rate <= 0.1


def _frames(fpr: list[float], seed: int = 4, k: int = 1) -> tuple[pd.DataFrame, ...]:
    names = [f"model=m{i}" for i in range(len(fpr))]
    study = simulate([2000] * len(fpr), [0.05] * len(fpr), fnr=0.3, fpr=fpr, seed=seed)
    rng = np.random.default_rng(seed)
    stratum = np.where(study.judge, "misaligned", "aligned")
    cell = np.array(names, dtype=object)[study.cell]
    items = study.sample(40, rng)
    ratings = study.rate_items(items, rng, k=k, rater_noise=0.0)
    judged = pd.DataFrame({"cell": cell, "stratum": stratum})
    item_frame = pd.DataFrame({"item": items, "cell": cell[items], "stratum": stratum[items]})
    return judged, item_frame, ratings


def test_document_names_method_estimand_assumptions_and_warns() -> None:
    frames = _frames([0.02] * 5 + [0.25])
    default = calibrate_document(*frames, n_boot=0)
    pooled = calibrate_document(*frames, n_boot=0, method="pooled")
    assert default["method"] == "two_phase" and default["warnings"] == []
    assert pooled["method"] == "pooled" and pooled["rules"]["method"] == "pooled"
    block = pooled["pooled_calibration"]
    assert block["method"] == METHOD and block["estimand"].startswith("responses")
    assert any(a.startswith("transfer") for a in block["assumptions"])
    assert block["pool_cells"] == [c["cell"] for c in pooled["cells"]]
    for plain, cell in zip(default["cells"], pooled["cells"], strict=True):
        assert cell["corrected"]["method"] == METHOD and cell["corrected"]["estimand"] == "responses"
        assert cell["by_estimand"]["responses"]["corrected"] == cell["corrected"]
        assert cell["corrected_per_cell_design"] == plain["corrected"]  # the default, kept beside it
    assert pooled["overall"]["corrected"] == default["overall"]["corrected"]  # two-phase overall
    # the cell whose judge differs is named first in the one warning, and flagged in its estimate
    warning, *contradicted = pooled["warnings"]
    assert warning.startswith("transfer assumption doubtful") and "model=m5" in warning
    # m5's false positives pull the pooled FPR above the other cells' judge rates: those cells are
    # named in a second warning (their pooled intervals collapse to [0, 0]) and flagged.
    collapsed = [c["cell"] for c in pooled["cells"] if "contradicts_pool" in c["corrected"]["flags"]]
    assert [bool(collapsed)] == [bool(contradicted)]
    for name in collapsed:
        assert name in contradicted[0]
        cell = next(c for c in pooled["cells"] if c["cell"] == name)
        assert cell["corrected"]["high"] == 0.0 and "transfer_doubtful" in cell["corrected"]["flags"]
    assert block["transfer_test"]["flagged_cells"][0] == "model=m5"
    assert "transfer_doubtful" in pooled["cells"][5]["corrected"]["flags"]
    view = read_document(pooled)
    assert view.method == "pooled" and view.warnings == tuple(pooled["warnings"])
    assert any("transfer_doubtful" in n.message for n in view.cell("model=m5").notes)


def test_document_with_a_rater_model_and_one_cell() -> None:
    # 3 raters -> Dawid-Skene labels, widened by imputation; one cell -> the overall row is the cell's
    # two-phase design and must not be changed by the pooled cell (they share nested dicts).
    judged, items, ratings = _frames([0.02], k=3)
    default = calibrate_document(judged, items, ratings, n_boot=0)
    pooled = calibrate_document(judged, items, ratings, n_boot=0, method="pooled")
    (cell,) = pooled["cells"]
    assert cell["corrected"]["method"] == METHOD + "+mi"
    assert cell["corrected_if_raters_perfect"]["method"] == METHOD
    assert pooled["overall"]["by_estimand"] == default["overall"]["by_estimand"]
    assert pooled["warnings"] == []


def test_document_refuses_bad_method_and_the_questions_estimand() -> None:
    frames = _frames([0.02, 0.02])
    with pytest.raises(CalibrationInputError, match="method must be one of two_phase, pooled"):
        calibrate_document(*frames, n_boot=0, method="shared")
    with pytest.raises(CalibrationInputError, match="responses estimand only"):
        calibrate_document(*frames, n_boot=0, method="pooled", estimand="questions")


def test_a_cell_without_labels_gets_a_pooled_estimate_outside_the_pool() -> None:
    judged, items, ratings = _frames([0.02, 0.02, 0.02])
    # drop every item of cell m2: it is corrected with the other cells' pool and says so
    keep = items["cell"] != "model=m2"
    doc = calibrate_document(
        judged, items[keep], ratings[ratings["item"].isin(items.loc[keep, "item"])], n_boot=0, method="pooled"
    )
    cell = next(c for c in doc["cells"] if c["cell"] == "model=m2")
    assert cell["corrected"]["method"] == METHOD and "not_in_pool" in cell["corrected"]["flags"]
    assert doc["pooled_calibration"]["pool_cells"] == ["model=m0", "model=m1"]
    tested = {c["cell"]: c for c in doc["pooled_calibration"]["transfer_test"]["cells"]}
    assert tested["model=m2"]["reason"].startswith("not tested")


def test_pooled_plan_predicts_the_simulated_half_widths() -> None:
    from emaudit.calibration.pooled_plan import plan_pooled

    rates = [0.05, 0.08, 0.1, 0.12] * 2
    plan = plan_pooled(rates, 3000, 0.6, 0.98, 0.03)
    assert plan.reached and max(c.expected_halfwidth for c in plan.cells) <= 0.03
    # Lee et al.'s split m1/m0 = theta sqrt(Se(1-Se)) / ((1-theta) sqrt(Sp(1-Sp))) for the widest cell
    worst = max(plan.cells, key=lambda c: c.expected_halfwidth)
    se, sp, t = plan.sensitivity, plan.specificity, worst.expected_rate
    assert plan.lee_ratio == pytest.approx(t * np.sqrt(se * (1 - se)) / ((1 - t) * np.sqrt(sp * (1 - sp))))
    cell = plan.cells[0]
    sim = pooled_coverage(
        [c.expected_rate for c in plan.cells],
        se,
        1 - sp,
        3000,
        (cell.n_judge_positive, cell.n_judge_negative),
        reps=1000,
        seed=1,
    )
    # the widest cell's planned half-width is within 15% of the simulated mean half-width
    i = plan.cells.index(worst)
    assert sim.mean_width[i] / 2 == pytest.approx(worst.expected_halfwidth, rel=0.15)
    assert sim.min_coverage >= 0.93
    # and a target the judge-rate term alone cannot reach is reported, not looped on
    small = plan_pooled([0.1, 0.3], 200, 0.6, 0.98, 0.02, max_per_stratum=200)
    assert not small.reached and "out of reach" in small.notes[0]


def test_table_latex_and_methods_name_the_pooled_method() -> None:
    from emaudit.calibration.report_formats import to_latex
    from emaudit.calibration.report_methods import methods_paragraph
    from emaudit.calibration.report_store import StudyDesign
    from emaudit.calibration.report_tables import cells_table

    doc = calibrate_document(*_frames([0.02] * 5 + [0.25]), n_boot=0, method="pooled")
    view = read_document(doc)
    table = cells_table(view)
    methods = list(table.data["method"])
    assert methods[:-1] == [METHOD] * 6 and methods[-1].startswith("two_phase")  # overall: two-phase
    assert "Lee et al. 2025" in table.note and "assumes transfer" in table.note
    assert "transfer_doubtful" in table.data["flags"].iloc[5]
    assert "pooled" in to_latex(table)
    design = StudyDesign("s", "judge", ["judge_label", "model"], "equal", 1, 0, None, 12, 30.0, 50.0, 1, 240)
    text = methods_paragraph(view, design)
    assert "Lang & Reiczigel (2014)" in text and "flagged model=m5" in text
    plain = methods_paragraph(read_document(calibrate_document(*_frames([0.02] * 2), n_boot=0)), design)
    assert "two-phase (double-sampling)" in plain and "Lang" not in plain
