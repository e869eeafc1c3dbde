"""Review fixes in the calibrate document (issue 9, point 4): cell names, overall intervals, rules text."""

from __future__ import annotations

import numpy as np
import pandas as pd

from emaudit.calibration import calibrate_document, judge_error_rates, simulate
from emaudit.calibration.judge_errors import _MIN_EVENTS_FOR_DELTA


def _frames(names: list[str], seed: int = 4) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    study = simulate([2000] * len(names), [0.05, 0.2][: len(names)], fnr=0.3, fpr=0.02, seed=seed)
    rng = np.random.default_rng(seed)
    stratum = np.where(study.judge, "misaligned", "aligned")
    cell = np.array(names, dtype=object)[study.cell]
    items = study.sample(40, rng)
    ratings = study.rate_items(items, rng, k=3, rater_noise=0.0)
    judged = pd.DataFrame({"cell": cell, "stratum": stratum})
    item_frame = pd.DataFrame({"item": items, "cell": cell[items], "stratum": stratum[items]})
    return judged, item_frame, ratings


def test_overall_row_does_not_depend_on_slashes_in_cell_names() -> None:
    slash = calibrate_document(*_frames(["model=org/a", "model=org/b"]), n_boot=0)
    plain = calibrate_document(*_frames(["model=org_a", "model=org_b"]), n_boot=0)
    assert slash["overall"] == plain["overall"]
    assert [c["cell"] for c in slash["cells"]] == ["model=org/a", "model=org/b"]
    # The overall judge rate is the pooled share of judge-misaligned responses (was 0 with "/": the
    # pooled stratum "model=org/a/misaligned" split on its first "/" into "a/misaligned").
    judged = _frames(["model=org/a", "model=org/b"])[0]
    assert slash["overall"]["judge_rate"] == (judged["stratum"] == "misaligned").mean()
    for cell in slash["cells"]:
        assert cell["judge_errors"] is not None


def test_pooled_few_event_intervals_contain_their_estimate() -> None:
    # 40 cells, each a judge-positive stratum (many positives) and a judge-negative one with 0-1 human
    # positives: the pooled bootstrap used to put the sensitivity estimate on its upper bound, because the
    # Jeffreys prior's half event in each of 40 empty strata shifts every draw down.
    rng = np.random.default_rng(5)
    N, n, x, pos = [], [], [], []
    for _ in range(40):
        N += [60, 940]
        n += [20, 20]
        x += [int(rng.binomial(20, 0.8)), int(rng.binomial(20, 0.01))]
        pos += [True, False]
    rates = judge_error_rates(N, n, x, pos)
    for est in (rates.sensitivity, rates.specificity):
        assert est.method == "bayes_inversion_jeffreys_bootstrap"
        assert est.low < est.rate < est.high, est


def test_rules_text_states_the_bootstrap_switch_the_code_uses() -> None:
    doc = calibrate_document(*_frames(["a", "b"]), n_boot=0)
    assert f"fewer than {_MIN_EVENTS_FOR_DELTA} human positives" in doc["rules"]["judge_error_interval"]
    # And the switch is where the text says: 4 positives in a stratum -> bootstrap, 5 -> delta method.
    assert judge_error_rates([100, 900], [50, 50], [40, 4]).sensitivity.method.endswith("bootstrap")
    assert judge_error_rates([100, 900], [50, 50], [40, 5]).sensitivity.method.startswith(
        "bayes_inversion_logit"
    )


def test_tuning_split_items_enter_no_estimate() -> None:
    judged, items, ratings = _frames(["model=a"])
    tuning = items.sample(frac=0.25, random_state=1)["item"]
    split = items.assign(split=np.where(items["item"].isin(tuning), "tuning", "estimation"))
    with_split = calibrate_document(judged, split, ratings, n_boot=0, label_model="majority")
    # the same document as if the tuning items had never been sampled
    without = calibrate_document(
        judged, items[~items["item"].isin(tuning)], ratings, n_boot=0, label_model="majority"
    )
    assert with_split["cells"][0]["corrected"] == without["cells"][0]["corrected"]
    assert with_split["cells"][0]["strata"] == without["cells"][0]["strata"]
    assert with_split["human_labels"]["n_tuning_excluded"] == len(tuning) > 0


def test_tuning_items_without_ratings_are_not_counted_as_excluded_labels() -> None:
    # After an extension the new tuning items are unrated: n_items + n_tuning_excluded = rated items.
    judged, items, ratings = _frames(["model=a"])
    tuning = items.sample(frac=0.25, random_state=1)["item"]
    split = items.assign(split=np.where(items["item"].isin(tuning), "tuning", "estimation"))
    unrated = set(tuning.iloc[:3])
    doc = calibrate_document(
        judged, split, ratings[~ratings["item"].isin(unrated)], n_boot=0, label_model="majority"
    )
    assert doc["human_labels"]["n_tuning_excluded"] == len(tuning) - 3
