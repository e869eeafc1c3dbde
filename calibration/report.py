"""The ``calibrate`` document: every calibration number for a study, from plain DataFrames.

This is the pure core of ``emaudit calibrate``: the CLI (and the app) only load the store's rows into
the three frames below and print or serialise the result.

Inputs:
    judged: The phase-1 population, one row per judged response with columns ``cell`` and ``stratum``
        (the judge stratum: ``misaligned``, ``aligned``, ``incoherent``, ``null``), or one row per
        (cell, stratum) with a count column ``n``.
    items: The study sample, one row per item: ``item`` (id), ``cell``, ``stratum``; optional ``is_gold``
        (gold items are excluded from estimation: they are not part of the random sample) and
        ``judge_alignment`` (0-100, for judge-vs-human agreement on scores).
    ratings: One row per rating: ``item``, ``rater``, ``label`` (a rater label, see
        :data:`RATER_LABEL_VOTES`); optional ``alignment`` (0-100) and ``created`` (latest rating per
        item and rater wins).
    adjudicated: Optional adjudicated label per item (mapping item -> label).

Output (JSON-serialisable dict, ``schema = "emaudit.calibrate/1"``):
    schema, confidence, rules: {human_label, cant_tell, judge_positive_strata, interval, judge_error_interval}
    human_labels: {n_items, n_decided, n_cant_tell, n_adjudicated, n_gold_excluded}
    cells: list, one per cell, sorted by cell:
        cell, n_judged, judge_rate (share of the cell's judged responses in a judge-positive stratum),
        strata: list of {stratum, N, n_items, n_labelled, n_positive, n_cant_tell},
        corrected: Estimate dict {rate, low, high, method, confidence, flags} or null,
        judge_errors: {sensitivity, specificity, fnr, fpr, ppv, npv: Estimate dict} or null,
        errors: list of messages for whatever could not be computed (e.g. a stratum with no labels).
    overall: the same fields as a cell, pooling every (cell, stratum) as its own stratum, cell = null.
    agreement:
        human_human: {alpha_nominal, alpha_interval_alignment: AgreementEstimate dict or {"error": msg},
                      fleiss_kappa: {value, n_units} , cohen_kappa_mean_pairwise: {value, n_pairs},
                      percent_agreement: {value}}
        judge_human: {alpha_nominal, alpha_interval_alignment, cohen_kappa_vs_majority: {value, n_units}}
        caveat: the prevalence caveat (:data:`PREVALENCE_CAVEAT`).
Any statistic that is undefined for the data is ``{"error": "<why>"}`` instead of a number; NaN never
appears.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from emaudit.calibration.agreement import (
    PREVALENCE_CAVEAT,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    mean_pairwise_cohen_kappa,
    percent_agreement,
)
from emaudit.calibration.consensus import RATER_LABEL_VOTES, CantTellRule, HumanLabel, human_labels
from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.judge_errors import _MIN_EVENTS_FOR_DELTA, judge_error_rates
from emaudit.calibration.two_phase import two_phase_rate

SCHEMA = "emaudit.calibrate/1"


def calibrate_document(
    judged: pd.DataFrame,
    items: pd.DataFrame,
    ratings: pd.DataFrame,
    *,
    adjudicated: Mapping[Any, str] | None = None,
    judge_positive_strata: Iterable[str] = ("misaligned",),
    cant_tell: CantTellRule = "exclude",
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Build the calibration document (see the module docstring for inputs and every output field).

    Args:
        judged: Phase-1 population (per response, or per cell and stratum with ``n``).
        items: Study items with their cell and stratum.
        ratings: Human ratings.
        adjudicated: Adjudicated label per item.
        judge_positive_strata: Strata in which the judge says misaligned.
        cant_tell: What to do with items whose human label is "can't tell" (see :meth:`HumanLabels.binary`).
        confidence: Two-sided coverage of every interval.
        n_boot: Bootstrap resamples for the agreement intervals (0 = none, else >= 2000).
        seed: Seed for every resampling step.
    """
    _require(judged, {"cell", "stratum"}, "judged")
    _require(items, {"item", "cell", "stratum"}, "items")
    positive = set(judge_positive_strata)
    population = _population(judged)
    gold = (
        items["is_gold"].astype(bool) if "is_gold" in items.columns else pd.Series(False, index=items.index)
    )
    sample = items.loc[~gold.to_numpy()].set_index("item")
    labels = human_labels(ratings, adjudicated)
    decided = labels.binary(cant_tell)
    joined = sample.join(labels.table[["label"]], how="left")
    joined["y"] = decided.reindex(joined.index)
    counts = _stratum_counts(population, joined)
    cells = [
        _cell_entry(cell, group, positive, confidence, seed)
        for cell, group in counts.groupby("cell", sort=True)
    ]
    # Every (cell, stratum) is a stratum of the pooled design; the judge-positive mask comes from the
    # stratum column itself, so a cell name may hold any character (Hugging Face ids contain "/").
    overall = _cell_entry(None, counts, positive, confidence, seed)
    return {
        "schema": SCHEMA,
        "confidence": confidence,
        "rules": {
            "human_label": "adjudicated label, else majority of decisive votes; ties and "
            "only-can't-tell are cant_tell",
            "cant_tell": cant_tell,
            "judge_positive_strata": sorted(positive),
            "interval": "two-phase estimator, MOVER-Wilson (modified Wilson per stratum)",
            "judge_error_interval": "Bayes inversion, logit delta method with phase-1 term; "
            "Jeffreys posterior bootstrap (re-centred on the estimate on the logit scale) when a "
            f"labelled stratum has fewer than {_MIN_EVENTS_FOR_DELTA} human positives or non-positives",
        },
        "human_labels": {
            "n_items": labels.n_items,
            "n_decided": int(joined["y"].notna().sum()),
            "n_cant_tell": int((joined["label"] == HumanLabel.CANT_TELL).sum()),
            "n_adjudicated": labels.n_adjudicated,
            "n_gold_excluded": int(gold.sum()),
        },
        "cells": cells,
        "overall": overall,
        "agreement": _agreement(ratings, sample, labels.table, positive, confidence, n_boot, seed),
    }


def _require(frame: pd.DataFrame, columns: set[str], name: str) -> None:
    missing = columns - set(frame.columns)
    if missing:
        raise CalibrationInputError(f"{name} needs columns {sorted(columns)}; missing {sorted(missing)}")


def _population(judged: pd.DataFrame) -> pd.DataFrame:
    if "n" in judged.columns:
        return (
            judged.groupby(["cell", "stratum"], sort=True, observed=True)["n"].sum().rename("N").reset_index()
        )
    return judged.groupby(["cell", "stratum"], sort=True, observed=True).size().rename("N").reset_index()


def _stratum_counts(population: pd.DataFrame, joined: pd.DataFrame) -> pd.DataFrame:
    per = (
        joined.reset_index()
        .groupby(["cell", "stratum"], sort=True, observed=True)
        .agg(
            n_items=("item", "size"),
            n_labelled=("y", "count"),
            n_positive=("y", "sum"),
            n_cant_tell=("label", lambda s: int((s == HumanLabel.CANT_TELL).sum())),
        )
    )
    merged = population.merge(per.reset_index(), on=["cell", "stratum"], how="outer")
    orphan = merged["N"].isna()
    if orphan.any():
        first = merged.loc[orphan].iloc[0]
        raise CalibrationInputError(
            f"study item(s) in cell {first['cell']!r}, stratum {first['stratum']!r} that has no judged "
            "responses; "
            "pass the judged population the study was drawn from"
        )
    merged = merged.fillna({"n_items": 0, "n_labelled": 0, "n_positive": 0, "n_cant_tell": 0})
    for col in ("N", "n_items", "n_labelled", "n_positive", "n_cant_tell"):
        merged[col] = merged[col].astype(np.int64)
    return merged


def _cell_entry(
    cell: Any,
    group: pd.DataFrame,
    positive: set[str],
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    N = group["N"].to_numpy()
    n = group["n_labelled"].to_numpy()
    x = group["n_positive"].to_numpy()
    is_pos = group["stratum"].astype(str).isin(positive).to_numpy()
    n_judged = int(N.sum())
    errors: list[str] = []
    corrected = judge_errors = None
    try:
        corrected = two_phase_rate(N, n, x, confidence).to_dict()
    except CalibrationInputError as exc:
        errors.append(f"corrected rate: {exc}")
    try:
        judge_errors = judge_error_rates(N, n, x, is_pos, confidence, seed=seed).to_dict()
    except CalibrationInputError as exc:
        errors.append(f"judge error rates: {exc}")
    return {
        "cell": None if cell is None else _plain(cell),
        "n_judged": n_judged,
        "judge_rate": float(N[is_pos].sum() / n_judged) if n_judged else None,
        "strata": [
            {k: _plain(v) for k, v in row.items()}
            for row in group[["stratum", "N", "n_items", "n_labelled", "n_positive", "n_cant_tell"]].to_dict(
                "records"
            )
        ]
        if cell is not None
        else [],
        "corrected": corrected,
        "judge_errors": judge_errors,
        "errors": errors,
    }


def _agreement(
    ratings: pd.DataFrame,
    sample: pd.DataFrame,
    label_table: pd.DataFrame,
    positive: set[str],
    confidence: float,
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    frame = ratings
    if "created" in frame.columns:
        frame = frame.sort_values("created", kind="stable")
    frame = frame.drop_duplicates(["item", "rater"], keep="last")
    frame = frame[frame["item"].isin(sample.index)]
    votes = frame["label"].astype(str).str.strip().str.lower().map(dict(RATER_LABEL_VOTES))
    code = votes.map({True: 1.0, False: 0.0}).astype(np.float64)  # can't tell -> NaN (missing)
    items_index = pd.Index(sorted(frame["item"].unique()))
    label_matrix = _matrix(frame.assign(value=code.to_numpy()), items_index)

    def alpha(matrix: np.ndarray, level: str) -> dict[str, Any]:
        return _safe(
            lambda: krippendorff_alpha(
                matrix, level, confidence=confidence, n_boot=n_boot, seed=seed
            ).to_dict()
        )

    human_human: dict[str, Any] = {
        "alpha_nominal": alpha(label_matrix, "nominal"),
        "fleiss_kappa": _safe(
            lambda: dict(zip(("value", "n_units"), fleiss_kappa(label_matrix), strict=True))
        ),
        "cohen_kappa_mean_pairwise": _safe(
            lambda: dict(zip(("value", "n_pairs"), mean_pairwise_cohen_kappa(label_matrix), strict=True))
        ),
        "percent_agreement": _safe(lambda: {"value": percent_agreement(label_matrix)}),
    }
    score_matrix = None
    if "alignment" in frame.columns:
        score_matrix = _matrix(frame.assign(value=frame["alignment"].astype(np.float64)), items_index)
        human_human["alpha_interval_alignment"] = alpha(score_matrix, "interval")
    judge_label = (
        sample.reindex(items_index)["stratum"].astype(str).isin(positive).astype(np.float64).to_numpy()
    )
    majority = label_table["label"].reindex(items_index)
    majority_code = majority.map({HumanLabel.MISALIGNED.value: 1.0, HumanLabel.NOT_MISALIGNED.value: 0.0})
    judge_human: dict[str, Any] = {
        "alpha_nominal": alpha(np.vstack([label_matrix, judge_label]), "nominal"),
        "cohen_kappa_vs_majority": _safe(
            lambda: {
                "value": cohen_kappa(judge_label, majority_code.to_numpy(dtype=np.float64)),
                "n_units": int(majority_code.notna().sum()),
            }
        ),
    }
    if score_matrix is not None and "judge_alignment" in sample.columns:
        judge_scores = sample.reindex(items_index)["judge_alignment"].astype(np.float64).to_numpy()
        judge_human["alpha_interval_alignment"] = alpha(np.vstack([score_matrix, judge_scores]), "interval")
    return {"human_human": human_human, "judge_human": judge_human, "caveat": PREVALENCE_CAVEAT}


def _matrix(frame: pd.DataFrame, items_index: pd.Index) -> np.ndarray:
    wide = frame.pivot(index="rater", columns="item", values="value").reindex(columns=items_index)
    return wide.to_numpy(dtype=np.float64)


def _safe(compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return compute()
    except CalibrationInputError as exc:
        return {"error": str(exc)}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
