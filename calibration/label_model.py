"""Which human label each study item gets: majority vote (raters as truth) or a rater-error model.

The calibrate document uses :func:`fit_label_model`. With at least
:data:`MIN_RATINGS_FOR_MODEL` ratings per item (the median over the study's rated items), the label is
the posterior of the Dawid-Skene model of :mod:`emaudit.calibration.rater_model` (stratum
prevalences, gold answers and adjudicated labels as anchors) and ``M`` imputed label sets carry its
uncertainty. With fewer, three raters cannot be told apart from the truth, so the label is the
majority vote and the document says the rate assumes perfect raters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from emaudit.calibration.consensus import RATER_LABEL_VOTES, CantTellRule
from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.rater_model import dawid_skene, posterior_label_draws

LabelModel = Literal["auto", "dawid_skene", "majority"]
LABEL_MODELS: tuple[LabelModel, ...] = ("auto", "dawid_skene", "majority")
MIN_RATINGS_FOR_MODEL = 3
PERFECT_RATERS_NOTE = (
    "fewer than {k} ratings per item: the corrected rate assumes the raters' majority label is the "
    "truth (perfect raters); its interval leaves out rater error. Collect {k} ratings per item, or "
    "adjudicate the non-unanimous items"
)


@dataclass(frozen=True)
class LabelFit:
    """Per-item labels for the estimators, and what produced them.

    Attributes:
        label: Per sample item, the label used (posterior probability under the model, 0/1 under
            majority vote; NaN = not used, e.g. can't tell under the exclude rule).
        draws: Imputed 0/1 label sets (items x M; NaN where ``label`` is NaN), or None under majority.
        info: The ``human_label_model`` block of the calibrate document.
    """

    label: pd.Series
    draws: pd.DataFrame | None
    info: dict[str, Any] = field(default_factory=dict)


def fit_label_model(
    ratings: pd.DataFrame,
    sample: pd.DataFrame,
    majority: pd.Series,
    *,
    gold_labels: Mapping[Any, str] | None = None,
    adjudicated: Mapping[Any, str] | None = None,
    cant_tell: CantTellRule = "exclude",
    model: LabelModel = "auto",
    draws: int = 20,
    seed: int = 0,
) -> LabelFit:
    """Fit the human-label model for the sample items.

    Args:
        ratings: ``item, rater, label`` (and optionally ``created``) for sample and gold items.
        sample: Sample items (index = item id) with ``cell`` and ``stratum`` (the prevalence groups).
        majority: Per sample item the majority-vote label (1/0, NaN when excluded): the fallback.
        gold_labels: Known answer per gold item (a rater label), used as anchors.
        adjudicated: Adjudicated label per item: fixed as the truth.
        cant_tell: Items with no decisive vote and no adjudication: ``exclude``, or count as
            ``misaligned`` / ``not_misaligned`` (as for the majority rule).
        model: ``"auto"`` (Dawid-Skene with >= 3 ratings per item, else majority), ``"dawid_skene"`` or
            ``"majority"``.
        draws: Imputations for the label uncertainty.
        seed: Seed of the imputations.
    """
    if model not in LABEL_MODELS:
        raise CalibrationInputError(f"label model must be one of {', '.join(LABEL_MODELS)}; got {model!r}")
    frame = ratings
    if "created" in frame.columns:
        frame = frame.sort_values("created", kind="stable")
    frame = frame.drop_duplicates(["item", "rater"], keep="last")
    vote = frame["label"].astype(str).str.strip().str.lower().map(dict(RATER_LABEL_VOTES))
    per_item = frame[frame["item"].isin(sample.index)].groupby("item").size()
    median_ratings = float(per_item.median()) if len(per_item) else 0.0
    fixed = _anchors(gold_labels, adjudicated)
    n_gold_anchors = sum(1 for k in (gold_labels or {}) if k in fixed)
    base = {
        "median_ratings_per_item": median_ratings,
        "min_ratings_for_model": MIN_RATINGS_FOR_MODEL,
        "n_raters": int(frame["rater"].nunique()),
        "anchors": {"gold": n_gold_anchors, "adjudicated": len(fixed) - n_gold_anchors},
    }
    use_model = model == "dawid_skene" or (model == "auto" and median_ratings >= MIN_RATINGS_FOR_MODEL)
    decisive = frame.assign(vote=vote)[vote.notna().to_numpy()]
    if use_model and (decisive.empty or decisive["rater"].nunique() < 2):
        use_model = False
    if not use_model:
        note = (
            PERFECT_RATERS_NOTE.format(k=MIN_RATINGS_FOR_MODEL)
            if median_ratings < MIN_RATINGS_FOR_MODEL
            else None
        )
        return LabelFit(
            label=majority.astype(np.float64),
            draws=None,
            info={
                **base,
                "model": "majority_vote",
                "description": "majority of decisive votes; adjudicated labels win; raters treated as "
                "the truth",
                "assumes_perfect_raters": True,
                "note": note,
            },
        )
    votes = pd.DataFrame(
        {
            "item": decisive["item"].to_numpy(),
            "rater": decisive["rater"].to_numpy(),
            "vote": decisive["vote"].astype(bool).astype(np.int64).to_numpy(),
        }
    )
    groups = pd.Series(
        [f"{c}\x1f{s}" for c, s in zip(sample["cell"], sample["stratum"], strict=True)], index=sample.index
    )
    fit = dawid_skene(votes, groups=groups, fixed=fixed)
    imputed = posterior_label_draws(
        votes, groups=groups, fixed=fixed, draws=draws, seed=seed, start=fit.posterior
    )
    posterior = fit.posterior.reindex(sample.index)
    imputed = imputed.reindex(sample.index).astype(np.float64)
    # Items with no decisive vote and no adjudication: the cant_tell rule, as under majority vote.
    undecided = posterior.isna().to_numpy()
    rated = sample.index.isin(frame["item"]) | sample.index.isin(list(fixed))
    fill = {"exclude": np.nan, "misaligned": 1.0, "not_misaligned": 0.0}[cant_tell]
    label = posterior.where(~undecided, np.where(rated, fill, np.nan))
    imputed.loc[undecided, :] = np.nan
    imputed.loc[undecided & rated, :] = fill
    raters = [
        {
            "rater": _plain(r),
            "sensitivity": float(row.sensitivity),
            "specificity": float(row.specificity),
            "n_ratings": int(row.n_ratings),
        }
        for r, row in fit.raters.sort_index().iterrows()
    ]
    return LabelFit(
        label=label.astype(np.float64),
        draws=imputed,
        info={
            **base,
            "model": "dawid_skene",
            "description": "Dawid & Skene (1979) latent-class EM: one sensitivity and specificity per "
            "rater, one prevalence per (cell, judge stratum); gold answers and adjudicated labels fixed "
            "as the truth; the judge is not a rater in it. Labels are posterior probabilities; "
            f"{draws} imputed label sets (each from a refit on a bootstrap of the items) carry the "
            "label uncertainty into every interval",
            "assumes_perfect_raters": False,
            "converged": fit.converged,
            "iterations": fit.iterations,
            "draws": draws,
            "raters": raters,
            "note": None,
        },
    )


def _anchors(gold_labels: Mapping[Any, str] | None, adjudicated: Mapping[Any, str] | None) -> dict[Any, int]:
    fixed: dict[Any, int] = {}
    for source in (gold_labels or {}, adjudicated or {}):  # adjudication wins over a gold answer
        for item, text in source.items():
            if text is None or (isinstance(text, float) and np.isnan(text)):
                continue
            vote = RATER_LABEL_VOTES.get(str(text).strip().lower())
            if vote is not None:
                fixed[item] = int(vote)
    return fixed


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
