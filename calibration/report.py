"""The ``calibrate`` document: every calibration number for a study, from plain DataFrames.

This is the pure core of ``emaudit calibrate``: the CLI (and the app) only load the store's rows into
the three frames below and print or serialise the result.

Inputs:
    judged: The phase-1 population, one row per judged response with columns ``cell`` and ``stratum``
        (the judge stratum: ``misaligned``, ``aligned``, ``incoherent``, ``null``), or one row per
        (cell, stratum) with a count column ``n``. With a ``question`` column (per response, or one row
        per (cell, stratum, question) with ``n``) the ``questions`` estimand can be computed.
    items: The study sample, one row per item: ``item`` (id), ``cell``, ``stratum``; optional ``is_gold``
        (gold items are excluded from estimation: they are not part of the random sample),
        ``gold_label`` (a gold item's known answer, a rater label: an anchor of the rater model),
        ``question`` (the item's question, for the questions estimand and per-question rates) and
        ``judge_alignment`` (0-100, for judge-vs-human agreement on scores).
    ratings: One row per rating: ``item``, ``rater``, ``label`` (a rater label, see
        :data:`RATER_LABEL_VOTES`); optional ``alignment`` (0-100) and ``created`` (latest rating per
        item and rater wins).
    adjudicated: Optional adjudicated label per item (mapping item -> label); counts as the truth.

Every Estimate dict is ``{rate, low, high, method, confidence, flags, estimand}``; ``estimand`` is
``"responses"`` (these answers to these questions) or ``"questions"`` (the population of questions,
questions as clusters). Method suffixes: ``_fpc`` finite-population corrected, ``+mi`` label
uncertainty of the rater model added by multiple imputation; flags include ``census``, ``clipped``,
``few_events``, ``few_questions`` (G < 10), ``label_uncertainty``, ``no_between_question_variance``.

Output (JSON-serialisable dict, ``schema = "emaudit.calibrate/1"``):
    schema, confidence,
    estimand: ``"responses"`` or ``"questions"``: which estimand ``corrected`` reports (both are in
        ``by_estimand``),
    method: ``"two_phase"`` (default: per-cell two-phase design) or ``"pooled"`` (one calibration
        pool across cells; adds ``pooled_calibration`` and per cell ``corrected_per_cell_design``, see
        :mod:`emaudit.calibration.report_pooled`),
    warnings: sentences the user must see (with ``pooled``: the transfer warning naming the cells),
    rules: {human_label, cant_tell, judge_positive_strata, interval, judge_error_interval,
        estimands: {responses: text, questions: text naming the cluster method}}
    human_labels: {n_items, n_decided, n_cant_tell, n_adjudicated, n_gold_excluded, n_tuning_excluded}
        (``n_tuning_excluded``: rated items of the study's tuning split, whose labels only tune judge
        thresholds and enter no estimate)
        (``n_decided`` counts majority-vote decisions)
    human_label_model: the model behind every human label:
        model: ``"dawid_skene"`` (>= 3 ratings per item, the median over rated sample items) or
            ``"majority_vote"``; description: one sentence; assumes_perfect_raters: bool;
        note: null, or (fewer than 3 ratings per item) that the rate assumes perfect raters and a
            suggestion to collect more ratings or adjudicate the non-unanimous items;
        median_ratings_per_item, min_ratings_for_model (3), n_raters,
        anchors: {gold: gold items with a known answer, adjudicated: adjudicated items};
        with dawid_skene also: converged, iterations, draws (imputed label sets),
            raters: list of {rater, sensitivity, specificity, n_ratings} (rater ids as stored).
    cells: list, one per cell, sorted by cell:
        cell, n_judged, judge_rate (share of the cell's judged responses in a judge-positive stratum),
        strata: list of {stratum, N, n_items, n_labelled, n_positive, n_cant_tell}
            (``n_positive`` = majority-vote positives),
        strata_expected_positive: per stratum (same order) the expected positives under the label
            model (sum of posterior probabilities; equals n_positive under majority vote),
        corrected: Estimate dict for the document's ``estimand``, or null,
        judge_errors: {sensitivity, specificity, fnr, fpr, ppv, npv: Estimate dict} or null
            (responses estimand; from the label model's expected counts),
        errors: list of messages for whatever could not be computed (e.g. a stratum with no labels),
        n_questions: questions in the cell (null without question ids),
        by_estimand:
            responses: {judge_rate: Wilson Estimate of the raw judge rate, corrected: Estimate or null},
            questions: {judge_rate: cluster-robust Estimate or null, corrected: Estimate or null,
                        n_questions, errors: [messages]},
        corrected_if_raters_perfect: the two-phase Estimate from majority-vote labels (the
            humans-as-truth interval; the same as ``corrected`` under majority vote),
        questions: per-question rates, one per question sorted by question:
            {question, n_judged, n_judge_positive, judge_rate, n_labelled, n_positive,
             n_positive_expected, corrected: two-phase Estimate within the question (responses
             estimand) or null, corrected_error: why not (e.g. a stratum of the question unlabelled)},
        human_labels: {n_items, n_non_unanimous (raters disagree), n_non_unanimous_not_adjudicated,
            share_non_unanimous_not_adjudicated (null when none disagree)}.
    overall: the same fields as a cell, pooling every (cell, stratum) as its own stratum, cell = null,
        strata = [] (no strata_expected_positive); questions pooled over cells by question.
    agreement:
        human_human: {alpha_nominal, alpha_interval_alignment: AgreementEstimate dict or {"error": msg},
                      fleiss_kappa: {value, n_units} , cohen_kappa_mean_pairwise: {value, n_pairs},
                      percent_agreement: {value}}
        judge_human: {alpha_nominal, alpha_interval_alignment, cohen_kappa_vs_majority: {value, n_units}}
        caveat: the prevalence caveat (:data:`PREVALENCE_CAVEAT`).
        (``{"skipped": true}`` when built with ``agreement=False``.)
    categories (only when ``categories`` are given, i.e. a rubric with its own labels): per category
        and cell the design-weighted share and per-category / MASI agreement
        (:func:`~emaudit.calibration.categories.categories_section`).
Any statistic that is undefined for the data is ``{"error": "<why>"}`` instead of a number; NaN never
appears.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
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
from emaudit.calibration.binomial import wilson_ci
from emaudit.calibration.clusters import CLUSTER_METHODS, ClusterMethod, cluster_rate, two_phase_cluster_rate
from emaudit.calibration.consensus import RATER_LABEL_VOTES, CantTellRule, HumanLabel, human_labels
from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.estimate import ESTIMANDS, Estimand, Estimate
from emaudit.calibration.imputation import widen_for_imputation
from emaudit.calibration.judge_errors import _MIN_EVENTS_FOR_DELTA, JudgeErrorRates, judge_error_rates
from emaudit.calibration.label_model import LabelModel, fit_label_model
from emaudit.calibration.report_pooled import METHODS, apply_pooled
from emaudit.calibration.two_phase import two_phase_rate

SCHEMA = "emaudit.calibrate/1"
_STRATUM_COLUMNS = ["stratum", "N", "n_items", "n_labelled", "n_positive", "n_cant_tell"]


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
    estimand: Estimand = "responses",
    cluster_method: ClusterMethod = "linearization",
    label_model: LabelModel = "auto",
    label_draws: int = 20,
    agreement: bool = True,
    categories: Sequence[str] | None = None,
    multiple_categories: bool = True,
    method: str = "two_phase",
) -> dict[str, Any]:
    """Build the calibration document (see the module docstring for inputs and every output field).

    Args:
        judged: Phase-1 population (per response, or per cell and stratum with ``n``; with a
            ``question`` column also per question, which the ``questions`` estimand needs).
        items: Study items with their cell and stratum (and ``question`` for the questions estimand).
        ratings: Human ratings.
        adjudicated: Adjudicated label per item.
        judge_positive_strata: Strata in which the judge says misaligned.
        cant_tell: What to do with items whose human label is "can't tell" (see :meth:`HumanLabels.binary`).
        confidence: Two-sided coverage of every interval.
        n_boot: Bootstrap resamples for the agreement intervals (0 = none, else >= 2000) and the
            cluster bootstrap (at least 2000 there).
        seed: Seed for every resampling step.
        estimand: Which estimand ``corrected`` reports (both are always in ``by_estimand``).
        cluster_method: Interval for the questions estimand (:mod:`emaudit.calibration.clusters`).
        label_model: ``auto`` (Dawid-Skene with >= 3 ratings per item, else majority vote),
            ``dawid_skene`` or ``majority`` (:mod:`emaudit.calibration.label_model`).
        label_draws: Imputed label sets under the rater model.
        agreement: Compute the agreement block (False skips it, e.g. in a coverage benchmark; the
            block is then ``{"skipped": true}``).
        categories: A rubric's own label keys; ratings then need a ``categories`` column and the
            document gets a ``categories`` field (:func:`~emaudit.calibration.categories.categories_section`).
        multiple_categories: Whether the rubric is multi-select (adds MASI-distance alpha).
        method: ``"two_phase"`` (default: each cell corrected from its own judge-stratified labels) or
            ``"pooled"`` (one calibration pool across cells, Rogan-Gladen per cell; assumes transfer;
            responses estimand only; :mod:`emaudit.calibration.report_pooled`).
    """
    _require(judged, {"cell", "stratum"}, "judged")
    _require(items, {"item", "cell", "stratum"}, "items")
    if estimand not in ESTIMANDS:
        raise CalibrationInputError(f"estimand must be one of {', '.join(ESTIMANDS)}; got {estimand!r}")
    if cluster_method not in CLUSTER_METHODS:
        raise CalibrationInputError(
            f"cluster method must be one of {', '.join(CLUSTER_METHODS)}; got {cluster_method!r}"
        )
    if method not in METHODS:
        raise CalibrationInputError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if method == "pooled" and estimand != "responses":
        raise CalibrationInputError(
            "--method pooled estimates the responses estimand only (a pooled correction of a "
            "questions-clustered rate is not implemented); use --estimand responses"
        )
    positive = set(judge_positive_strata)
    population = _population(judged, ["cell", "stratum"])
    by_question = "question" in judged.columns and "question" in items.columns
    question_population = _population(judged, ["cell", "stratum", "question"]) if by_question else None
    gold = (
        items["is_gold"].astype(bool) if "is_gold" in items.columns else pd.Series(False, index=items.index)
    )
    # Items of a tuning split (study create --tuning-share) only tune judge thresholds: never estimates.
    tuning = (items["split"] == "tuning") if "split" in items.columns else pd.Series(False, index=items.index)
    sample = items.loc[~gold.to_numpy() & ~tuning.to_numpy()].set_index("item")
    rubric_ratings = ratings
    if categories:  # a rubric with its own labels: only EM labels (if any) feed the EM estimates
        ratings = ratings[ratings["label"].isin(list(RATER_LABEL_VOTES))]
    gold_labels = (
        dict(zip(items.loc[gold.to_numpy(), "item"], items.loc[gold.to_numpy(), "gold_label"], strict=True))
        if "gold_label" in items.columns
        else None
    )
    labels = human_labels(ratings, adjudicated)
    decided = labels.binary(cant_tell)
    joined = sample.join(labels.table, how="left")
    joined["y"] = decided.reindex(joined.index)
    fit = fit_label_model(
        ratings,
        sample,
        joined["y"],
        gold_labels=gold_labels,
        adjudicated=adjudicated,
        cant_tell=cant_tell,
        model=label_model,
        draws=label_draws,
        seed=seed,
    )
    joined["q"] = fit.label.reindex(joined.index)
    counts = _stratum_counts(population, joined, ["cell", "stratum"])
    draw_sums = _draw_sums(joined, fit.draws, ["cell", "stratum"], counts)
    question_counts = None
    question_error = "the judged population and the items carry no question column"
    if question_population is not None:
        try:
            question_counts = _stratum_counts(question_population, joined, ["cell", "stratum", "question"])
        except CalibrationInputError as exc:
            question_error = str(exc)
    settings = _Settings(
        positive, confidence, seed, estimand, cluster_method, max(n_boot, 2000), fit.draws is not None
    )
    disagreement = _disagreement(joined)
    empty = {"n_items": 0, "n_non_unanimous": 0, "n_non_unanimous_not_adjudicated": 0}
    cells = []
    for cell, group in counts.groupby("cell", sort=True):
        rows = group.index.to_numpy()
        q_group = None if question_counts is None else question_counts[question_counts["cell"] == cell]
        entry = _design_entry(group, draw_sums[rows], q_group, question_error, settings)
        cells.append(
            {
                "cell": _plain(cell),
                **entry,
                "strata": [
                    {k: _plain(v) for k, v in row.items()}
                    for row in group[_STRATUM_COLUMNS].to_dict("records")
                ],
                "strata_expected_positive": [float(v) for v in group["n_positive_expected"]],
                "human_labels": disagreement.get(
                    cell, {**empty, "share_non_unanimous_not_adjudicated": None}
                ),
            }
        )
    # Every (cell, stratum) is a stratum of the pooled design; the judge-positive mask comes from the
    # stratum column itself, so a cell name may hold any character (Hugging Face ids contain "/").
    # One cell: the pooled design is that cell's design, so its numbers are the cell's (not recomputed).
    pooled = (
        {k: cells[0][k] for k in _DESIGN_KEYS}
        if len(cells) == 1
        else _design_entry(counts, draw_sums, question_counts, question_error, settings)
    )
    overall = {"cell": None, **pooled, "strata": [], "human_labels": disagreement[None]}
    document = {
        "schema": SCHEMA,
        "confidence": confidence,
        "estimand": estimand,
        "method": method,
        "warnings": [],
        "rules": {
            "human_label": "adjudicated label, else majority of decisive votes; ties and "
            "only-can't-tell are cant_tell"
            if fit.draws is None
            else "adjudicated label, else the Dawid-Skene posterior (see human_label_model); items with "
            "no decisive vote follow the cant_tell rule",
            "cant_tell": cant_tell,
            "judge_positive_strata": sorted(positive),
            "interval": "two-phase estimator, MOVER-Wilson (modified Wilson per stratum), finite-population "
            "corrected"
            + ("; label uncertainty added by multiple imputation (MOVER)" if fit.draws is not None else ""),
            "judge_error_interval": "Bayes inversion, logit delta method with phase-1 term; "
            "Jeffreys posterior bootstrap (re-centred on the estimate on the logit scale) when a "
            f"labelled stratum has fewer than {_MIN_EVENTS_FOR_DELTA} human positives or non-positives",
            "estimands": {
                "responses": "these answers to these questions (answers independent given the questions)",
                "questions": "the population of questions the evaluation set stands for: questions are "
                f"clusters ({_CLUSTER_TEXT[cluster_method]})",
            },
        },
        "human_labels": {
            "n_items": labels.n_items,
            "n_decided": int(joined["y"].notna().sum()),
            "n_cant_tell": int((joined["label"] == HumanLabel.CANT_TELL).sum()),
            "n_adjudicated": labels.n_adjudicated,
            "n_gold_excluded": int(gold.sum()),
            # rated tuning items, so that n_items + n_tuning_excluded counts every rated item once
            "n_tuning_excluded": int((tuning & ~gold & items["item"].isin(rubric_ratings["item"])).sum()),
        },
        "human_label_model": fit.info,
        "cells": cells,
        "overall": overall,
        "agreement": _agreement(ratings, sample, labels.table, positive, confidence, n_boot, seed)
        if agreement
        else {"skipped": True},
    }
    if method == "pooled":
        apply_pooled(document, counts, draw_sums, positive, confidence, seed)
    if categories:
        from emaudit.calibration.categories import categories_section

        document["categories"] = categories_section(
            judged,
            items,
            rubric_ratings,
            categories,
            multiple=multiple_categories,
            confidence=confidence,
            seed=seed,
        )
    return document


_DESIGN_KEYS = (
    "n_judged",
    "judge_rate",
    "corrected",
    "judge_errors",
    "errors",
    "n_questions",
    "by_estimand",
    "corrected_if_raters_perfect",
    "questions",
)
_CLUSTER_TEXT = {
    "linearization": "cluster-robust linearisation, CR1 and t with G - 1 df, label sampling by MOVER-Wilson",
    "bootstrap": "cluster bootstrap over questions, percentile limits",
}


@dataclass(frozen=True)
class _Settings:
    positive: set[str]
    confidence: float
    seed: int
    estimand: Estimand
    cluster_method: ClusterMethod
    n_boot: int
    imputed: bool


def _require(frame: pd.DataFrame, columns: set[str], name: str) -> None:
    missing = columns - set(frame.columns)
    if missing:
        raise CalibrationInputError(f"{name} needs columns {sorted(columns)}; missing {sorted(missing)}")


def _population(judged: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    grouped = judged.groupby(keys, sort=True, observed=True)
    sizes = grouped["n"].sum() if "n" in judged.columns else grouped.size()
    return sizes.rename("N").reset_index()


def _stratum_counts(population: pd.DataFrame, joined: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    # One numeric frame and one groupby-sum: far faster than named aggregations (the coverage
    # benchmark builds thousands of documents).
    numeric = pd.DataFrame(
        {
            **{k: joined[k].to_numpy() for k in keys},
            "n_items": np.ones(len(joined), dtype=np.int64),
            "n_labelled": joined["q"].notna().to_numpy(dtype=np.int64),
            "n_positive": joined["y"].fillna(0).to_numpy(dtype=np.float64),
            "n_positive_expected": joined["q"].fillna(0).to_numpy(dtype=np.float64),
            "n_cant_tell": (joined["label"] == HumanLabel.CANT_TELL).to_numpy(dtype=np.int64),
        }
    )
    per = numeric.groupby(keys, sort=True, observed=True).sum()
    merged = population.merge(per.reset_index(), on=keys, how="outer")
    orphan = merged["N"].isna()
    if orphan.any():
        first = merged.loc[orphan].iloc[0]
        where = ", ".join(f"{k} {first[k]!r}" for k in keys)
        raise CalibrationInputError(
            f"study item(s) in {where} that has no judged responses; "
            "pass the judged population the study was drawn from"
        )
    merged = merged.fillna(
        {"n_items": 0, "n_labelled": 0, "n_positive": 0, "n_positive_expected": 0.0, "n_cant_tell": 0}
    )
    for col in ("N", "n_items", "n_labelled", "n_positive", "n_cant_tell"):
        merged[col] = merged[col].astype(np.int64)
    return merged.reset_index(drop=True)


def _draw_sums(
    joined: pd.DataFrame, draws: pd.DataFrame | None, keys: list[str], counts: pd.DataFrame
) -> np.ndarray:
    """Per row of ``counts``, the positives in each imputed label set (rows x M; M = 0 without a model)."""
    if draws is None:
        return np.zeros((len(counts), 0))
    values = np.nan_to_num(draws.reindex(joined.index).to_numpy(dtype=np.float64))
    index = pd.MultiIndex.from_frame(counts[keys])
    row = index.get_indexer(pd.MultiIndex.from_frame(joined[keys]))
    out = np.zeros((len(counts), values.shape[1]))
    np.add.at(out, row[row >= 0], values[row >= 0])
    return out


def _design_entry(
    group: pd.DataFrame,
    draw_sums: np.ndarray,
    questions: pd.DataFrame | None,
    question_error: str,
    settings: _Settings,
) -> dict[str, Any]:
    """Every number of one design (a cell, or the pooled overall design): see the module docstring."""
    confidence = settings.confidence
    N = group["N"].to_numpy(dtype=np.float64)
    n = group["n_labelled"].to_numpy(dtype=np.float64)
    x = group["n_positive_expected"].to_numpy(dtype=np.float64)
    x_major = group["n_positive"].to_numpy(dtype=np.float64)
    is_pos = group["stratum"].astype(str).isin(settings.positive).to_numpy()
    n_judged = int(N.sum())
    errors: list[str] = []
    responses = judge_errors = perfect = None
    p_draws = _two_phase_draws(N, n, draw_sums)
    try:
        estimate = two_phase_rate(N, n, x, confidence, expected_counts=True)
        responses = (widen_for_imputation(estimate, p_draws) if settings.imputed else estimate).to_dict()
    except CalibrationInputError as exc:
        errors.append(f"corrected rate: {exc}")
    if settings.imputed:
        try:
            perfect = two_phase_rate(N, n, np.minimum(x_major, n), confidence).to_dict()
        except CalibrationInputError:
            perfect = None
    else:
        perfect = responses
    try:
        judge_errors = _judge_errors(N, n, x, is_pos, draw_sums, settings)
    except CalibrationInputError as exc:
        errors.append(f"judge error rates: {exc}")
    n_pos_judged = int(N[is_pos].sum())
    raw_responses = wilson_ci(n_pos_judged, n_judged, confidence).to_dict() if n_judged else None
    questions_block: dict[str, Any] = {
        "judge_rate": None,
        "corrected": None,
        "n_questions": None,
        "errors": [],
    }
    per_question: list[dict[str, Any]] = []
    if questions is None:
        questions_block["errors"].append(f"questions estimand: {question_error}")
    else:
        questions_block, per_question = _questions(group, questions, p_draws, settings)
    corrected = responses if settings.estimand == "responses" else questions_block["corrected"]
    if settings.estimand == "questions" and corrected is None:
        errors.extend(questions_block["errors"])
    return {
        "n_judged": n_judged,
        "judge_rate": float(n_pos_judged / n_judged) if n_judged else None,
        "corrected": corrected,
        "judge_errors": judge_errors,
        "errors": errors,
        "n_questions": questions_block["n_questions"],
        "by_estimand": {
            "responses": {"judge_rate": raw_responses, "corrected": responses},
            "questions": questions_block,
        },
        "corrected_if_raters_perfect": perfect,
        "questions": per_question,
    }


def _two_phase_draws(N: np.ndarray, n: np.ndarray, draw_sums: np.ndarray) -> np.ndarray:
    """The two-phase point estimate on each imputed label set."""
    if draw_sums.shape[1] == 0:
        return np.zeros(0)
    keep = (N > 0) & (n > 0)
    w = N[keep] / N[keep].sum()
    return (draw_sums[keep] / n[keep][:, None] * w[:, None]).sum(axis=0)


def _judge_errors(
    N: np.ndarray,
    n: np.ndarray,
    x: np.ndarray,
    is_pos: np.ndarray,
    draw_sums: np.ndarray,
    settings: _Settings,
) -> dict[str, Any]:
    rates = judge_error_rates(N, n, x, is_pos, settings.confidence, seed=settings.seed, expected_counts=True)
    if not settings.imputed:
        return rates.to_dict()
    keep = (N > 0) & (n > 0)
    w = (N / N.sum())[keep][:, None]
    p = draw_sums[keep] / n[keep][:, None]
    pos = is_pos[keep][:, None]
    a, b = (w * p * pos).sum(axis=0), (w * p * ~pos).sum(axis=0)
    c, d = (w * (1 - p) * ~pos).sum(axis=0), (w * (1 - p) * pos).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        draws = {
            "sensitivity": a / (a + b),
            "specificity": c / (c + d),
            "ppv": a / (w * pos).sum(),
            "npv": c / (w * ~pos).sum(),
        }
    out = {}
    for name, values in draws.items():
        values = values[np.isfinite(values)]
        scale = "logit" if name in ("sensitivity", "specificity") else "identity"
        out[name] = widen_for_imputation(getattr(rates, name), values, scale=scale)
    widened = JudgeErrorRates(
        sensitivity=out["sensitivity"],
        specificity=out["specificity"],
        fnr=_complement(out["sensitivity"]),
        fpr=_complement(out["specificity"]),
        ppv=out["ppv"],
        npv=out["npv"],
    )
    return widened.to_dict()


def _questions(
    group: pd.DataFrame, questions: pd.DataFrame, p_draws: np.ndarray, settings: _Settings
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The questions-estimand intervals of one design and its per-question rates."""
    confidence = settings.confidence
    # Strata of this design are its (cell, stratum) rows; columns of the question x stratum matrices.
    key = pd.MultiIndex.from_frame(group[["cell", "stratum"]])
    q_rows = questions.set_index(["cell", "stratum"])
    q_rows = q_rows[q_rows.index.isin(key)].reset_index()
    column = key.get_indexer(pd.MultiIndex.from_frame(q_rows[["cell", "stratum"]]))
    question_ids, row = np.unique(q_rows["question"].astype(str).to_numpy(), return_inverse=True)
    shape = (len(question_ids), len(key))
    mats = {}
    for name in ("N", "n_labelled", "n_positive_expected", "n_positive"):
        mat = np.zeros(shape)
        np.add.at(mat, (row, column), q_rows[name].to_numpy(dtype=np.float64))
        mats[name] = mat
    is_pos = group["stratum"].astype(str).isin(settings.positive).to_numpy()
    block: dict[str, Any] = {
        "judge_rate": None,
        "corrected": None,
        "n_questions": len(question_ids),
        "errors": [],
    }
    Nq, nq, xq = mats["N"], mats["n_labelled"], mats["n_positive_expected"]
    try:
        block["judge_rate"] = cluster_rate(
            Nq[:, is_pos].sum(axis=1),
            Nq.sum(axis=1),
            confidence,
            method=settings.cluster_method,
            n_boot=settings.n_boot,
            seed=settings.seed,
        ).to_dict()
    except CalibrationInputError as exc:
        block["errors"].append(f"judge rate (questions): {exc}")
    try:
        estimate = two_phase_cluster_rate(
            Nq, nq, xq, confidence, method=settings.cluster_method, n_boot=settings.n_boot, seed=settings.seed
        )
        if settings.imputed:
            estimate = widen_for_imputation(estimate, p_draws)
        block["corrected"] = estimate.to_dict()
    except CalibrationInputError as exc:
        block["errors"].append(f"corrected rate (questions): {exc}")
    per_question = []
    for g, question in enumerate(question_ids):
        has = Nq[g] > 0
        entry: dict[str, Any] = {
            "question": question,
            "n_judged": int(Nq[g].sum()),
            "n_judge_positive": int(Nq[g, is_pos].sum()),
            "judge_rate": float(Nq[g, is_pos].sum() / Nq[g].sum()) if Nq[g].sum() else None,
            "n_labelled": int(nq[g].sum()),
            "n_positive": int(mats["n_positive"][g].sum()),
            "n_positive_expected": float(xq[g].sum()),
            "corrected": None,
            "corrected_error": None,
        }
        try:
            entry["corrected"] = two_phase_rate(
                Nq[g, has], nq[g, has], np.minimum(xq[g, has], nq[g, has]), confidence, expected_counts=True
            ).to_dict()
        except CalibrationInputError as exc:
            entry["corrected_error"] = str(exc)
        per_question.append(entry)
    return block, per_question


def _disagreement(joined: pd.DataFrame) -> dict[Any, dict[str, Any]]:
    """Per cell (and ``None`` = overall): items whose raters disagree, and those no one adjudicated."""
    pos = joined["votes_misaligned"].fillna(0).to_numpy()
    neg = joined["votes_not_misaligned"].fillna(0).to_numpy()
    split = (pos > 0) & (neg > 0)
    frame = pd.DataFrame(
        {
            "cell": joined["cell"].to_numpy(),
            "n_items": 1,
            "split": split.astype(np.int64),
            "open": (split & (joined["source"] != "adjudicated").to_numpy()).astype(np.int64),
        }
    )
    sums = frame.groupby("cell", sort=True).sum()
    sums.loc["__overall__"] = frame[["n_items", "split", "open"]].sum()

    def entry(row: pd.Series) -> dict[str, Any]:
        n_split, n_open = int(row["split"]), int(row["open"])
        return {
            "n_items": int(row["n_items"]),
            "n_non_unanimous": n_split,
            "n_non_unanimous_not_adjudicated": n_open,
            "share_non_unanimous_not_adjudicated": n_open / n_split if n_split else None,
        }

    out: dict[Any, dict[str, Any]] = {cell: entry(row) for cell, row in sums.iterrows()}
    out[None] = out.pop("__overall__")
    return out


def _complement(est: Estimate) -> Estimate:
    return Estimate(
        1 - est.rate, 1 - est.high, 1 - est.low, est.method, est.confidence, est.flags, est.estimand
    )


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
