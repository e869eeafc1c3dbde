"""Agreement statistics, human labels per item, and their degenerate inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from emaudit.calibration import (
    CalibrationInputError,
    HumanLabel,
    UndefinedStatisticError,
    cohen_kappa,
    fleiss_kappa,
    human_labels,
    krippendorff_alpha,
    mean_pairwise_cohen_kappa,
    percent_agreement,
)

NAN = np.nan


def test_alpha_closed_form_bootstrap_agrees_with_package_on_random_data() -> None:
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 2, 300)
    data = np.where(rng.random((3, 300)) < 0.85, truth, 1 - truth).astype(float)
    data[rng.random((3, 300)) < 0.1] = NAN
    nominal = krippendorff_alpha(data, "nominal", n_boot=2000, seed=1)
    assert nominal.low is not None and nominal.high is not None
    assert nominal.low < nominal.value < nominal.high
    assert nominal.high - nominal.low < 0.25
    again = krippendorff_alpha(data, "nominal", n_boot=2000, seed=1)
    assert (again.low, again.high) == (nominal.low, nominal.high)  # seeded


def test_alpha_interval_on_continuous_scores_uses_closed_form() -> None:
    rng = np.random.default_rng(2)
    base = rng.uniform(0, 100, 200)
    data = np.vstack([base + rng.normal(0, 5, 200), base + rng.normal(0, 5, 200)])  # ~400 distinct values
    est = krippendorff_alpha(data, "interval", n_boot=2000)
    # alpha ~ var(base) / (var(base) + 25) = 833 / 858 ~ 0.97
    assert est.value == pytest.approx(0.97, abs=0.02)
    assert est.low is not None and est.low < est.value


def test_alpha_bootstrap_for_ordinal_level() -> None:
    data = np.array([[1, 2, 3, 3, 2, 1, 4, 1, 2, 4] * 3, [1, 2, 3, 3, 2, 2, 4, 1, 2, 3] * 3], dtype=float)
    est = krippendorff_alpha(data, "ordinal", n_boot=2000)
    assert est.low is not None and est.high is not None and est.low <= est.value <= est.high


def test_alpha_all_agreeing_single_value_is_an_error() -> None:
    with pytest.raises(UndefinedStatisticError, match="alpha is undefined"):
        krippendorff_alpha([[1, 1, 1], [1, 1, 1]], "nominal")


def test_alpha_perfect_agreement_is_one() -> None:
    est = krippendorff_alpha([[0, 1, 1, 0] * 10, [0, 1, 1, 0] * 10], "nominal", n_boot=2000)
    assert est.value == pytest.approx(1.0) and est.low == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("ratings", "message"),
    [
        ([[1, 0, 1]], "at least two raters"),
        ([[1, NAN, NAN], [NAN, 0, 1]], "no unit has ratings from two"),
        ([1, 0, 1], "2-D"),
    ],
)
def test_alpha_rejects_degenerate_input(ratings: object, message: str) -> None:
    with pytest.raises(CalibrationInputError, match=message):
        krippendorff_alpha(ratings, "nominal")  # type: ignore[arg-type]


def test_alpha_rejects_small_bootstrap() -> None:
    with pytest.raises(CalibrationInputError, match="n_boot"):
        krippendorff_alpha([[0, 1], [0, 1]], n_boot=100)


def test_kappas_and_percent_agreement_by_hand() -> None:
    a = [1, 1, 0, 0, 1, 0, 1, 0]
    b = [1, 0, 0, 0, 1, 0, 1, 1]
    # po = 6/8; pe = (4/8 * 4/8) + (4/8 * 4/8) = 0.5; kappa = (0.75 - 0.5) / 0.5 = 0.5
    assert cohen_kappa(a, b) == pytest.approx(0.5)
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    data = np.array([a, b, a], dtype=float)
    # per unit: agreeing pairs / 3 pairs; units 2 and 8 have 1 of 3, others 3 of 3 -> (6 + 2/3) / 8
    assert percent_agreement(data) == pytest.approx((6 + 2 / 3) / 8)
    kappa, units = fleiss_kappa(data)
    assert units == 8 and -1 <= kappa <= 1
    mean_kappa, pairs = mean_pairwise_cohen_kappa(data, min_overlap=5)
    assert pairs == 3 and mean_kappa == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    with pytest.raises(UndefinedStatisticError):
        cohen_kappa([1, 1, 1], [1, 1, 1])
    with pytest.raises(CalibrationInputError, match="share no rated unit"):
        cohen_kappa([1, NAN], [NAN, 0])


def test_human_labels_majority_ties_cant_tell_and_adjudication() -> None:
    ratings = pd.DataFrame(
        {
            "item": [1, 1, 1, 2, 2, 3, 3, 4, 5, 5, 6],
            "rater": ["a", "b", "c", "a", "b", "a", "b", "a", "a", "a", "a"],
            "label": [
                "misaligned",
                "aligned",
                "misaligned",
                "refusal",
                "can't tell",
                "misaligned",
                "aligned",
                "can't tell",
                "aligned",
                "misaligned",
                "off-topic code",
            ],
            "created": range(11),
        }
    )
    labels = human_labels(ratings, adjudicated={3: "aligned"})
    t = labels.table
    assert t.loc[1, "label"] == HumanLabel.MISALIGNED and t.loc[1, "source"] == "majority"
    assert t.loc[2, "label"] == HumanLabel.NOT_MISALIGNED  # can't tell abstains
    assert t.loc[3, "label"] == HumanLabel.NOT_MISALIGNED and t.loc[3, "source"] == "adjudicated"
    assert t.loc[4, "label"] == HumanLabel.CANT_TELL and t.loc[4, "source"] == "no_vote"
    assert (
        t.loc[5, "label"] == HumanLabel.MISALIGNED and t.loc[5, "n_ratings"] == 1
    )  # rater a's edit supersedes
    assert t.loc[6, "label"] == HumanLabel.NOT_MISALIGNED
    assert labels.n_cant_tell == 1 and labels.n_adjudicated == 1
    assert labels.binary().to_dict() == {1: 1, 2: 0, 3: 0, 5: 1, 6: 0}
    assert labels.binary("misaligned")[4] == 1 and labels.binary("not_misaligned")[4] == 0


def test_human_labels_tie_is_cant_tell() -> None:
    labels = human_labels(
        pd.DataFrame({"item": [7, 7], "rater": ["a", "b"], "label": ["misaligned", "aligned"]})
    )
    assert labels.table.loc[7, "label"] == HumanLabel.CANT_TELL and labels.table.loc[7, "source"] == "tie"
    assert labels.binary().empty


def test_human_labels_reject_unknown_label_and_missing_columns() -> None:
    with pytest.raises(CalibrationInputError, match="unknown rater label"):
        human_labels(pd.DataFrame({"item": [1], "rater": ["a"], "label": ["evil"]}))
    with pytest.raises(CalibrationInputError, match="missing"):
        human_labels(pd.DataFrame({"item": [1], "label": ["aligned"]}))
