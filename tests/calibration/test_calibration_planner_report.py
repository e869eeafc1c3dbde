"""Planner, simulation, the `emaudit plan` command and the calibrate document."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from emaudit.calibration import (
    SCHEMA,
    CalibrationInputError,
    calibrate_document,
    judge_score_agreement,
    next_batch,
    neyman_allocation,
    plan_sample,
    simulate,
    two_phase_rate,
)
from emaudit.calibration.cli import register


def test_neyman_allocation_by_hand() -> None:
    # W S = [0.1 * 0.4, 0.9 * 0.2] = [0.04, 0.18] -> 100 labels split 18.2 / 81.8 -> 18 / 82
    assert neyman_allocation([0.1, 0.9], [0.4, 0.2], 100).tolist() == [18, 82]
    # a cap frees labels for the other stratum
    assert neyman_allocation([0.1, 0.9], [0.4, 0.2], 100, caps=[10, 1000]).tolist() == [10, 90]
    with pytest.raises(CalibrationInputError, match="minimum"):
        neyman_allocation([0.5, 0.5], [0.5, 0.5], 3, min_per_stratum=2)


def test_plan_reaches_target_and_simulation_confirms_it() -> None:
    plan = plan_sample(0.05, 0.8, 0.99, 0.02)
    cell = plan.cells[0]
    assert (cell.expected_high - cell.expected_low) / 2 <= 0.02
    assert cell.n_judge_positive >= 10 and cell.n_judge_negative > cell.n_judge_positive
    # The planner's check: simulate a study with these design values and label as planned.
    rng = np.random.default_rng(0)
    widths, hits = [], 0
    for seed in range(200):
        study = simulate(
            20_000, 0.05 * 0.8 + 0.95 * 0.01, fnr=0.95 * 0.01 / 0.0495, fpr=0.05 * 0.2 / 0.9505, seed=seed
        )
        idx = study.sample([[cell.n_judge_positive, cell.n_judge_negative]], rng)
        N = study.strata_sizes()[0]
        n = np.bincount(study.stratum[idx], minlength=2)
        x = np.bincount(study.stratum[idx], weights=study.truth[idx], minlength=2)
        est = two_phase_rate(N, n, x)
        widths.append(est.halfwidth)
        hits += est.low <= study.true_rate()[0] <= est.high
    assert np.mean(widths) == pytest.approx(0.02, abs=0.004)
    assert hits / 200 >= 0.9


def test_plan_per_cell_caps_and_notes() -> None:
    plan = plan_sample({"a": 0.01, "b": 0.3}, 0.6, 0.98, 0.01, n_judged=300)
    assert [c.cell for c in plan.cells] == ["a", "b"]
    assert plan.cells[0].n_judge_positive <= 3  # capped at the 3 judge-positive responses
    # Was: a note that even labelling every response misses ±0.01. With the finite-population correction
    # a census has width 0, so the target is always reachable and a small cell stops short of a census.
    assert not plan.notes
    assert plan.cells[0].n_total < 300 and plan.cells[1].n_total < 300
    assert json.loads(json.dumps(plan.to_dict()))["n_total"] == plan.n_total


def test_next_batch_goes_where_the_variance_is() -> None:
    add = next_batch([100, 900], [20, 20], [10, 1], 60)
    assert add.sum() == 60 and add[1] > add[0]


def test_simulate_is_seeded_and_has_the_requested_error_rates() -> None:
    a = simulate([50_000, 50_000], [0.05, 0.2], fnr=[0.1, 0.5], fpr=0.02, seed=7)
    b = simulate([50_000, 50_000], [0.05, 0.2], fnr=[0.1, 0.5], fpr=0.02, seed=7)
    assert np.array_equal(a.judge, b.judge)
    for c, fnr in enumerate([0.1, 0.5]):
        cell = a.cell == c
        truth, judge = a.truth[cell], a.judge[cell]
        assert (~judge[truth]).mean() == pytest.approx(fnr, abs=0.02)
        assert judge[~truth].mean() == pytest.approx(0.02, abs=0.003)
    assert a.true_rate() == pytest.approx([0.05, 0.2], abs=0.005)


def test_simulated_raters_have_k_distinct_raters_and_noise() -> None:
    study = simulate(2000, 0.3, fnr=0.1, fpr=0.05, seed=1)
    rng = np.random.default_rng(2)
    items = study.sample(50, rng)
    assert len(items) == 100 and np.allclose(
        study.inclusion_probabilities(50).sum(), (50 / study.strata_sizes()).sum()
    )
    ratings = study.rate_items(items, rng, k=3, n_raters=6, rater_noise=0.1)
    assert (ratings.groupby("item")["rater"].nunique() == 3).all()
    vote = ratings["label"] == "misaligned"
    agree = (vote.to_numpy() == np.repeat(study.truth[items], 3)).mean()
    assert agree == pytest.approx(0.9, abs=0.05)
    with pytest.raises(CalibrationInputError, match="k <= n_raters"):
        study.rate_items(items, rng, k=4, n_raters=3)


def test_judge_score_agreement_on_a_score_model() -> None:
    study = simulate(4000, 0.2, None, None, score_separation=3.0, seed=3)
    assert study.judge_score is not None
    view = judge_score_agreement(study.judge_score, study.truth.astype(int), 100 - 80 * study.truth)
    assert view.roc_auc > 0.9 and view.spearman is not None and view.spearman > 0.5
    assert 10 <= view.best_threshold.threshold <= 80


def _plan_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test root."""

    register(app)
    return app


def test_cli_plan_prints_table_and_json() -> None:
    runner = CliRunner()
    table = runner.invoke(_plan_app(), ["plan", "-r", "0.05", "-r", "0.2", "--ppv", "0.8", "--npv", "0.99"])
    assert table.exit_code == 0 and "total labels" in table.output
    out = runner.invoke(_plan_app(), ["plan", "-r", "0.05", "--ppv", "0.8", "--npv", "0.99", "--json"])
    doc = json.loads(out.output)
    assert doc["n_total"] == plan_sample(0.05, 0.8, 0.99, 0.02).n_total
    bad = runner.invoke(_plan_app(), ["plan", "-r", "0.05", "--ppv", "1.5", "--npv", "0.99"])
    assert bad.exit_code == 2 and "expected_ppv" in bad.output


def _study_frames(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    study = simulate([3000, 3000, 3000], [0.02, 0.1, 0.3], None, None, score_separation=3.0, seed=seed)
    rng = np.random.default_rng(seed)
    stratum = np.where(study.judge, "misaligned", "aligned")
    items = study.sample(40, rng)
    ratings = study.rate_items(items, rng, k=3, n_raters=5, rater_noise=0.05, cant_tell_rate=0.03)
    judged = pd.DataFrame({"cell": study.cell, "stratum": stratum})
    assert study.judge_score is not None
    item_frame = pd.DataFrame(
        {
            "item": items,
            "cell": study.cell[items],
            "stratum": stratum[items],
            "judge_alignment": study.judge_score[items],
        }
    )
    return judged, item_frame, ratings


def test_calibrate_document_fields_and_values() -> None:
    judged, items, ratings = _study_frames()
    doc = calibrate_document(judged, items, ratings, n_boot=2000)
    text = json.dumps(doc, allow_nan=False)  # serialisable, never NaN
    assert "NaN" not in text
    assert doc["schema"] == SCHEMA and len(doc["cells"]) == 3
    cell = doc["cells"][1]
    assert cell["n_judged"] == 3000
    assert cell["judge_rate"] == pytest.approx((judged.query("cell == 1")["stratum"] == "misaligned").mean())
    assert {s["stratum"] for s in cell["strata"]} == {"misaligned", "aligned"}
    assert all(s["n_items"] == 40 for s in cell["strata"])
    # Three ratings per item: the corrected rate is the two-phase estimator on the rater model's
    # expected counts (issue 9); on the majority-vote counts it is the raters-as-truth comparison.
    N = [s["N"] for s in cell["strata"]]
    n = [s["n_labelled"] for s in cell["strata"]]
    x = [s["n_positive"] for s in cell["strata"]]
    assert doc["human_label_model"]["model"] == "dawid_skene"
    expected = cell["strata_expected_positive"]
    assert cell["corrected"]["rate"] == pytest.approx(
        two_phase_rate(N, n, expected, expected_counts=True).rate
    )
    assert cell["corrected_if_raters_perfect"]["rate"] == pytest.approx(two_phase_rate(N, n, x).rate)
    assert cell["corrected"]["estimand"] == "responses" and doc["estimand"] == "responses"
    assert set(cell["judge_errors"]) == {"sensitivity", "specificity", "fnr", "fpr", "ppv", "npv"}
    assert (
        doc["overall"]["n_judged"] == 9000
        and doc["overall"]["corrected"]["low"] < doc["overall"]["corrected"]["rate"]
    )
    hh = doc["agreement"]["human_human"]
    assert (
        0.6 < hh["alpha_nominal"]["value"] <= 1 and hh["alpha_nominal"]["low"] < hh["alpha_nominal"]["value"]
    )
    assert "value" in hh["alpha_interval_alignment"] and "value" in hh["fleiss_kappa"]
    jh = doc["agreement"]["judge_human"]
    assert "value" in jh["alpha_nominal"] and "value" in jh["alpha_interval_alignment"]
    assert "stratified" in doc["agreement"]["caveat"]
    assert doc["human_labels"]["n_items"] == len(items)


def test_calibrate_document_reports_per_cell_errors_instead_of_failing() -> None:
    judged, items, ratings = _study_frames(1)
    drop = items[(items["cell"] == 0) & (items["stratum"] == "misaligned")]["item"]
    doc = calibrate_document(judged, items[~items["item"].isin(drop)], ratings, n_boot=0)
    broken = doc["cells"][0]
    assert broken["corrected"] is None and "no human labels" in broken["errors"][0]
    assert doc["cells"][1]["corrected"] is not None


def test_calibrate_document_single_rater_gives_agreement_error() -> None:
    judged, items, ratings = _study_frames(2)
    one = ratings.drop_duplicates("item")
    doc = calibrate_document(judged, items, one, n_boot=0)
    assert "error" in doc["agreement"]["human_human"]["alpha_nominal"]
    assert doc["cells"][0]["corrected"] is not None
