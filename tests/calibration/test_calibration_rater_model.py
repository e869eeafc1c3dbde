"""The rater-error model (issue 9, point 1): Dawid-Skene vs crowd-kit, anchors, and the calibrate document."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from crowdkit.aggregation import DawidSkene

from emaudit.calibration import calibrate_document, simulate
from emaudit.calibration.coverage import rater_coverage
from emaudit.calibration.estimate import Estimate
from emaudit.calibration.imputation import widen_for_imputation
from emaudit.calibration.rater_model import dawid_skene, posterior_label_draws


def _votes(seed: int = 1, noise: list[float] | None = None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    study = simulate(3000, 0.3, fnr=0.1, fpr=0.05, seed=seed)
    rng = np.random.default_rng(seed + 1)
    items = study.sample(150, rng)
    ratings = study.rate_items(items, rng, k=3, n_raters=5, rater_noise=noise or [0.05, 0.1, 0.2, 0.1, 0.15])
    votes = ratings.assign(vote=(ratings["label"] == "misaligned").astype(int))[["item", "rater", "vote"]]
    return votes, items, study.truth


def _crowdkit(votes: pd.DataFrame, true_labels: pd.Series | None = None) -> DawidSkene:
    data = votes.rename(columns={"item": "task", "rater": "worker", "vote": "label"})
    return DawidSkene(n_iter=2000, tol=1e-12).fit(data, true_labels=true_labels)


CROWDKIT_WARNINGS = pytest.mark.filterwarnings("ignore::Warning:crowdkit")  # its pandas deprecations


@CROWDKIT_WARNINGS
def test_dawid_skene_matches_crowdkit() -> None:
    votes, _, _ = _votes()
    ours = dawid_skene(votes, smoothing=0.0, tol=1e-13, max_iter=5000)
    theirs = _crowdkit(votes)
    assert ours.converged
    posterior = theirs.probas_[1].reindex(ours.posterior.index)
    assert np.abs(posterior - ours.posterior).max() < 1e-5
    errors = theirs.errors_
    for rater, row in ours.raters.iterrows():
        # crowd-kit's errors_[worker, observed, true] = P(observed | true)
        assert row.sensitivity == pytest.approx(errors.loc[(rater, 1), 1], abs=1e-5)
        assert row.specificity == pytest.approx(errors.loc[(rater, 0), 0], abs=1e-5)
    assert ours.prevalence.iloc[0] == pytest.approx(theirs.priors_[1], abs=1e-5)


@CROWDKIT_WARNINGS
def test_anchors_match_crowdkit_true_labels_and_stay_fixed() -> None:
    votes, items, truth = _votes(seed=3)
    gold = pd.Series(truth[items[:30]].astype(int), index=items[:30])
    ours = dawid_skene(votes, fixed=gold, smoothing=0.0, tol=1e-13, max_iter=5000)
    theirs = _crowdkit(votes, true_labels=gold)
    assert (ours.posterior.loc[gold.index] == gold.astype(float)).all()
    rest = ours.posterior.index.difference(gold.index)
    assert np.abs(theirs.probas_[1].reindex(rest) - ours.posterior.loc[rest]).max() < 1e-4


def test_posterior_is_bayes_rule_at_the_fitted_parameters() -> None:
    votes, _, _ = _votes(seed=5)
    fit = dawid_skene(votes)
    item = votes["item"].iloc[0]
    mine = votes[votes["item"] == item].join(fit.raters, on="rater")
    prev = float(fit.prevalence.iloc[0])
    like1 = np.prod(np.where(mine["vote"] == 1, mine["sensitivity"], 1 - mine["sensitivity"]))
    like0 = np.prod(np.where(mine["vote"] == 1, 1 - mine["specificity"], mine["specificity"]))
    assert fit.posterior[item] == pytest.approx(prev * like1 / (prev * like1 + (1 - prev) * like0), abs=1e-9)


def test_group_prevalences_keep_split_votes_in_a_rare_stratum_rare() -> None:
    # One prevalence per design stratum: a 1-of-3 vote in the judge-aligned stratum (true rate ~1%) gets a
    # small posterior; with one pooled prior (~40% in this sample) it would not.
    study = simulate(20_000, 0.05, fnr=0.3, fpr=0.01, seed=8)
    rng = np.random.default_rng(9)
    items = study.sample([[150, 150]], rng)
    ratings = study.rate_items(items, rng, k=3, rater_noise=0.1)
    votes = ratings.assign(vote=(ratings["label"] == "misaligned").astype(int))[["item", "rater", "vote"]]
    groups = pd.Series(study.stratum[items], index=items)
    grouped = dawid_skene(votes, groups=groups)
    pooled = dawid_skene(votes)
    truth_rate = [study.truth[study.stratum == h].mean() for h in (0, 1)]
    assert grouped.prevalence[1] == pytest.approx(truth_rate[1], abs=0.03)
    assert grouped.prevalence[0] == pytest.approx(truth_rate[0], abs=0.12)
    split = votes.groupby("item")["vote"].sum()
    one_of_three = split[split == 1].index.intersection(groups[groups == 1].index)
    assert len(one_of_three) > 10
    assert grouped.posterior[one_of_three].max() < pooled.posterior[one_of_three].min()


def test_posterior_draws_keep_fixed_labels_and_vary_elsewhere() -> None:
    votes, items, truth = _votes(seed=6)
    fixed = pd.Series(truth[items[:10]].astype(int), index=items[:10])
    draws = posterior_label_draws(votes, fixed=fixed, draws=30, seed=2)
    assert draws.shape == (len(items), 30)
    assert (draws.loc[fixed.index].to_numpy() == fixed.to_numpy()[:, None]).all()
    varying = draws.std(axis=1) > 0
    assert 0 < varying.sum() < len(items)  # only uncertain items vary
    again = posterior_label_draws(votes, fixed=fixed, draws=30, seed=2)
    assert draws.equals(again)  # seeded


def test_widen_for_imputation_by_hand() -> None:
    # B = var([0.10, 0.12, 0.14], ddof=1) = 0.0004; (1 + 1/3) B = 0.000533; z sqrt(.) = 1.959964 * 0.023094
    est = Estimate(0.12, 0.09, 0.16, "two_phase_mover_wilson_fpc")
    wide = widen_for_imputation(est, [0.10, 0.12, 0.14])
    extra = 1.959963985 * np.sqrt(0.0004 * 4 / 3)
    assert wide.low == pytest.approx(0.12 - np.hypot(0.03, extra), abs=1e-9)
    assert wide.high == pytest.approx(0.12 + np.hypot(0.04, extra), abs=1e-9)
    assert wide.method.endswith("+mi") and "label_uncertainty" in wide.flags


def _study_frames(
    k: int, noise: float, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, np.ndarray]:
    study = simulate([3000, 3000], [0.05, 0.2], fnr=0.3, fpr=0.02, seed=seed)
    rng = np.random.default_rng(seed)
    stratum = np.where(study.judge, "misaligned", "aligned")
    items = study.sample(50, rng)
    ratings = study.rate_items(items, rng, k=k, rater_noise=noise)
    judged = pd.DataFrame({"cell": study.cell, "stratum": stratum})
    frame = pd.DataFrame({"item": items, "cell": study.cell[items], "stratum": stratum[items]})
    return judged, frame, ratings, items


def test_calibrate_document_states_the_label_model_and_open_disagreements() -> None:
    judged, items, ratings, _ = _study_frames(3, 0.1)
    split = ratings.groupby("item")["label"].nunique()
    non_unanimous = split[split > 1].index
    adjudicated = {int(i): "misaligned" for i in non_unanimous[:5]}
    doc = calibrate_document(judged, items, ratings, adjudicated=adjudicated, n_boot=0)
    model = doc["human_label_model"]
    assert model["model"] == "dawid_skene" and not model["assumes_perfect_raters"]
    assert model["anchors"] == {"gold": 0, "adjudicated": 5} and model["note"] is None
    assert {r["rater"] for r in model["raters"]} == {"r0", "r1", "r2"}
    assert all(0.8 < r["sensitivity"] <= 1 and 0.8 < r["specificity"] <= 1 for r in model["raters"])
    cells = doc["cells"]
    total_split = sum(c["human_labels"]["n_non_unanimous"] for c in cells)
    assert total_split == len(non_unanimous)
    open_split = sum(c["human_labels"]["n_non_unanimous_not_adjudicated"] for c in cells)
    assert open_split == len(non_unanimous) - 5
    for cell in cells:
        share = cell["human_labels"]["share_non_unanimous_not_adjudicated"]
        h = cell["human_labels"]
        assert share == pytest.approx(h["n_non_unanimous_not_adjudicated"] / h["n_non_unanimous"])
        assert "label_uncertainty" in cell["corrected"]["flags"]
        assert cell["judge_errors"]["sensitivity"]["method"].endswith("+mi")
        assert cell["corrected_if_raters_perfect"]["method"] == "two_phase_mover_wilson_fpc"
    assert "Dawid-Skene" in doc["rules"]["human_label"]


def test_fewer_than_three_ratings_assume_perfect_raters_and_say_so() -> None:
    judged, items, ratings, _ = _study_frames(2, 0.05, seed=1)
    doc = calibrate_document(judged, items, ratings, n_boot=0)
    model = doc["human_label_model"]
    assert model["model"] == "majority_vote" and model["assumes_perfect_raters"]
    assert "perfect raters" in model["note"] and "adjudicate" in model["note"]
    cell = doc["cells"][0]
    assert cell["corrected"] == cell["corrected_if_raters_perfect"]


def test_gold_answers_anchor_the_model() -> None:
    judged, items, ratings, _ = _study_frames(3, 0.1, seed=2)
    gold_ids = np.arange(100_000, 100_020)
    truth = np.arange(20) % 2
    gold_ratings = pd.DataFrame(
        {"item": np.repeat(gold_ids, 3), "rater": ["r0", "r1", "r2"] * 20, "label": "aligned"}
    )
    gold_items = pd.DataFrame(
        {
            "item": gold_ids,
            "cell": 0,
            "stratum": "aligned",
            "is_gold": True,
            "gold_label": np.where(truth == 1, "misaligned", "aligned"),
        }
    )
    frame = pd.concat([items.assign(is_gold=False, gold_label=None), gold_items], ignore_index=True)
    doc = calibrate_document(judged, frame, pd.concat([ratings, gold_ratings]), n_boot=0)
    model = doc["human_label_model"]
    assert model["anchors"]["gold"] == 20 and doc["human_labels"]["n_gold_excluded"] == 20
    # Every rater called the 10 misaligned gold items aligned: the anchors pull sensitivities down.
    plain = calibrate_document(judged, items, ratings, n_boot=0)["human_label_model"]
    assert all(
        a["sensitivity"] < b["sensitivity"] for a, b in zip(model["raters"], plain["raters"], strict=True)
    )


def test_corrected_rate_covers_with_noisy_raters_slice() -> None:
    # Seeded slice of benchmarks/rater_coverage.py (2,000 replications per scenario there): prevalence 2%,
    # judge FNR 30% / FPR 1%, 60 + 200 labels, three raters at 10% error. 80 replications: MC SE at 95%
    # is 0.024; tolerance 0.88. Majority vote as the truth covers ~10% here (the 8%).
    result = rater_coverage(0.02, 0.1, reps=80, seed=7, label_draws=10)
    assert result.coverage >= 0.88, result
    assert result.perfect_coverage <= 0.4, result
