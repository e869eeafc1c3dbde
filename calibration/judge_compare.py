"""Compare judges on the same human labels, with the design of the study they were drawn by.

A study's sample is drawn with judge A's strata (``judge_label`` x cell), so each labelled item
carries A's inclusion probability. A second judge B, scored afterwards on the same items
(``emaudit judge --study S --judge-model B``), does not define the strata, but every estimator
here weights items by the *design* (A's strata), so B's numbers are as valid as A's:

* Design weight of a human-labelled estimation item in design stratum ``h``:
  ``w_i = N_h / m_h`` (``N_h`` responses in the stratum, ``m_h`` of them human-labelled outside
  the tuning split): the two-phase (double sampling) weight of Cochran, *Sampling Techniques*,
  §12, with the labelled items a random subsample within each stratum.
* Every rate is a ratio of weighted totals (Hájek 1971), e.g. ``Se_j = sum w y l_j / sum w y``,
  which per design stratum ``h`` with share ``W_h = N_h / N`` is
  ``R = sum_h W_h (pi_h . a) / sum_h W_h (pi_h . b)`` over the cell probabilities ``pi_h`` of the
  few outcomes ``(a, b)`` the ratio needs (e.g. for FNR: human misaligned and judge said no /
  yes / anything else). The point estimate plugs in the observed cell shares. The interval is
  the percentile interval of the per-stratum Jeffreys posterior ``pi_h ~ Dirichlet(n_hc + 1/2)``
  (independent strata, as the design draws them), the multinomial generalisation of the
  Beta(x + 1/2, n - x + 1/2) posterior :func:`emaudit.calibration.judge_error_rates` falls back
  to. Unlike a linearised (Woodruff 1971) or effective-n interval it keeps its coverage when a
  heavily weighted stratum holds only a handful of events, which is the normal case for judge B
  in the stratum where judge A says aligned (a few human positives, each weighing N_h / m_h).
* Paired differences between judges use the same posterior with signed outcomes
  (``a = l_B - l_A`` on the items both judged), so the pairing removes the shared sampling noise.
* B's corrected rate uses B's label as a post-stratifier (Holt & Smith 1979): with B's counts
  over all N responses (``population_labels``), ``p_B = sum_g (N_g / N) p_g`` where ``p_g`` is
  the design-weighted human rate among items B labelled ``g``. Without B's population counts
  (B judged only the study's items) it is the design-weighted human rate itself, which needs
  no judge at all (flag ``sample_only``). For A the post-stratified estimator is the two-phase
  estimator.
* AUC: the design-weighted probability that a human-misaligned item has a lower alignment
  score than a human-aligned one (ties 1/2), with a percentile interval from a stratified
  bootstrap (items resampled within design strata, Rao & Wu 1988), paired across judges.

Estimand: ``responses`` (the N judged responses of the study's population; the posterior leaves
out the finite-population correction, so intervals are slightly conservative when a stratum is
mostly labelled). Assumptions: the human label is truth; humans labelled a random subsample
within each design stratum; tuning-split labels (``split == "tuning"``) choose each judge's
threshold and are used for nothing else.

Output fields (:meth:`JudgeComparison.to_dict`, for ``emaudit report``'s judge x judge table):

``estimand`` ("responses"), ``confidence``, ``reference`` (judge the differences are taken
against), ``human_rate`` (Estimate), ``labels_used`` (``{"estimation": n, "tuning": n}``),
``assumptions`` (list of str), ``judges``: one record per judge with ``judge``, ``n_items``
(study items it judged), ``n_labelled`` (estimation items with a human label and its verdict),
``raw_rate``, ``sensitivity``, ``specificity``, ``fnr``, ``fpr``, ``corrected_rate``, ``auc``
(each an Estimate dict: ``rate, low, high, method, confidence, flags``; ``auc`` is null without
scores), ``threshold`` (null, or ``{"value", "youden_j", "n_tuning"}`` chosen on the tuning
split), ``tuned`` (null, or ``{"sensitivity", "specificity"}`` Estimates on the estimation split
at that threshold); and ``differences``: one record per (judge, measure) with ``judge``,
``reference``, ``measure`` (``raw_rate``, ``sensitivity``, ``specificity``, ``fnr``, ``fpr``,
``auc``), ``difference`` (judge minus reference, an Estimate dict whose ``rate`` may be negative)
and ``n_paired`` (labelled items both judged).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from emaudit.calibration._validate import check_confidence
from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.estimate import Estimate

__all__ = ["JudgeComparison", "JudgeRow", "PairedDifference", "compare_judges", "design_weights"]

_Arr = NDArray[np.float64]
MEASURES: tuple[str, ...] = ("raw_rate", "sensitivity", "specificity", "fnr", "fpr", "auc")
ASSUMPTIONS: tuple[str, ...] = (
    "the human label is truth",
    "humans labelled a random subsample within each design stratum (the study's strata)",
    "tuning-split labels only choose thresholds; estimates use the estimation split",
)


_RATIO_CELLS: tuple[tuple[float, float], ...] = ((0.0, 0.0), (0.0, 1.0), (1.0, 1.0))
_DIFFERENCE_CELLS: tuple[tuple[float, float], ...] = ((0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (-1.0, 1.0))
_PRIOR = 0.5  # Jeffreys


@dataclass(frozen=True)
class _Design:
    """Items of one estimate, by design stratum.

    Attributes:
        stratum: Per item, the index of its design stratum.
        shares: Per stratum, ``W_h = N_h / N`` (over the strata of the design).
    """

    stratum: NDArray[np.int64]
    shares: _Arr

    @property
    def n_strata(self) -> int:
        return len(self.shares)


def _design(strata: pd.Series, strata_sizes: Mapping[str, int]) -> _Design:
    names = list(strata_sizes)
    unknown = sorted(set(strata.astype(str)) - set(names))
    if unknown:
        raise CalibrationInputError(f"stratum {unknown[0]!r} has no size in strata_sizes")
    index = {name: i for i, name in enumerate(names)}
    sizes = np.array([float(strata_sizes[name]) for name in names])
    if sizes.sum() <= 0:
        raise CalibrationInputError("strata_sizes: no responses in any stratum")
    codes = strata.astype(str).map(index).to_numpy(np.int64)
    counts = np.bincount(codes, minlength=len(names))
    for i, name in enumerate(names):
        if counts[i] > sizes[i]:
            raise CalibrationInputError(
                f"stratum {name!r}: {counts[i]} items but only {int(sizes[i])} responses"
            )
    return _Design(np.asarray(codes, dtype=np.int64), sizes / sizes.sum())


def design_weights(strata: pd.Series, strata_sizes: Mapping[str, int]) -> pd.Series:
    """``N_h / m_h`` for each item, ``m_h`` the items of stratum ``h`` in ``strata``.

    Raises:
        CalibrationInputError: a stratum not in ``strata_sizes``, or more items than responses.
    """
    _design(strata, strata_sizes)
    counts = strata.astype(str).value_counts()
    return strata.astype(str).map(lambda h: strata_sizes[h] / counts[h]).astype(float)


class _Posterior:
    """Plug-in ratios and their per-stratum Jeffreys-Dirichlet posterior percentile intervals."""

    def __init__(self, confidence: float, n_draws: int, seed: int) -> None:
        self.confidence = confidence
        self.n_draws = n_draws
        self.rng = np.random.default_rng(seed)

    def ratio(
        self,
        a: _Arr,
        b: _Arr,
        design: _Design,
        cells: tuple[tuple[float, float], ...],
        method: str,
        flags: tuple[str, ...] = (),
    ) -> Estimate:
        """``sum_h W_h E_h[a] / sum_h W_h E_h[b]``; strata without items drop out of both sums."""
        # outcomes are small integers: a in {-1, 0, 1}, b in {0, 1}; key = (a + 1) * 2 + b
        lookup = np.full(6, -1, dtype=np.int64)
        for k, (cell_a, cell_b) in enumerate(cells):
            lookup[int(cell_a + 1) * 2 + int(cell_b)] = k
        key = (np.rint(a).astype(np.int64) + 1) * 2 + np.rint(b).astype(np.int64)
        cell_of = lookup[np.clip(key, 0, 5)]
        if np.any(cell_of < 0) or np.any(np.abs(a) > 1) or np.any((b != 0) & (b != 1)):
            raise CalibrationInputError(f"an outcome is not one of the cells {cells}")
        counts = np.zeros((design.n_strata, len(cells)))
        np.add.at(counts, (design.stratum, cell_of), 1.0)
        present = counts.sum(axis=1) > 0
        counts, shares = counts[present], design.shares[present]
        if not present.any():
            return _undefined(method, self.confidence, flags)
        a_of = np.array([cell[0] for cell in cells])
        b_of = np.array([cell[1] for cell in cells])
        observed = counts / counts.sum(axis=1, keepdims=True)
        denominator = float(shares @ (observed @ b_of))
        if denominator <= 0:
            return _undefined(method, self.confidence, flags)
        point = float(shares @ (observed @ a_of)) / denominator
        draws = self.rng.gamma(counts + _PRIOR, size=(self.n_draws, *counts.shape))
        draws /= draws.sum(axis=2, keepdims=True)
        values = (draws @ a_of) @ shares / ((draws @ b_of) @ shares)
        return _percentile_estimate(point, values, method, self.confidence, flags)


def _undefined(method: str, confidence: float, flags: tuple[str, ...] = ()) -> Estimate:
    return Estimate(float("nan"), float("nan"), float("nan"), method, confidence, (*flags, "undefined"))


def _percentile_estimate(
    point: float, draws: _Arr, method: str, confidence: float, flags: tuple[str, ...] = ()
) -> Estimate:
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return _undefined(method, confidence, flags)
    tail = (1 - confidence) / 2
    low, high = (float(v) for v in np.quantile(finite, [tail, 1 - tail]))
    return Estimate(point, min(low, point), max(high, point), method, confidence, flags)


def _auc(y: _Arr, score: _Arr, weight: _Arr) -> float:
    """P(score of a human-positive < score of a human-negative), design-weighted, ties 1/2."""
    pos, neg = y == 1, y == 0
    if not pos.any() or not neg.any():
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    s, w, positive, negative = score[order], weight[order], pos[order], neg[order]
    _, start = np.unique(s, return_index=True)
    pos_w = np.where(positive, w, 0.0)
    neg_w = np.where(negative, w, 0.0)
    pos_by = np.add.reduceat(pos_w, start)
    neg_by = np.add.reduceat(neg_w, start)
    below = np.cumsum(pos_by) - pos_by  # positives with a strictly lower score
    concordant = float(np.sum(neg_by * (below + pos_by / 2)))
    return concordant / (float(pos_w.sum()) * float(neg_w.sum()))


@dataclass(frozen=True)
class JudgeRow:
    """One judge's numbers against the human labels (see the module docstring)."""

    judge: str
    n_items: int
    n_labelled: int
    raw_rate: Estimate
    sensitivity: Estimate
    specificity: Estimate
    fnr: Estimate
    fpr: Estimate
    corrected_rate: Estimate
    auc: Estimate | None
    threshold: dict[str, float] | None = None
    tuned: dict[str, Estimate] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable record."""
        out: dict[str, Any] = {"judge": self.judge, "n_items": self.n_items, "n_labelled": self.n_labelled}
        for name in ("raw_rate", "sensitivity", "specificity", "fnr", "fpr", "corrected_rate"):
            out[name] = getattr(self, name).to_dict()
        out["auc"] = self.auc.to_dict() if self.auc is not None else None
        out["threshold"] = self.threshold
        out["tuned"] = {k: v.to_dict() for k, v in self.tuned.items()} if self.tuned else None
        return out


@dataclass(frozen=True)
class PairedDifference:
    """``measure(judge) - measure(reference)`` on the items both judged."""

    judge: str
    reference: str
    measure: str
    difference: Estimate
    n_paired: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable record."""
        return {
            "judge": self.judge,
            "reference": self.reference,
            "measure": self.measure,
            "difference": self.difference.to_dict(),
            "n_paired": self.n_paired,
        }


@dataclass(frozen=True)
class JudgeComparison:
    """Every judge on the same human labels, and their paired differences."""

    human_rate: Estimate
    judges: tuple[JudgeRow, ...]
    differences: tuple[PairedDifference, ...]
    reference: str
    labels_used: dict[str, int]
    confidence: float = 0.95
    estimand: str = "responses"
    assumptions: tuple[str, ...] = field(default=ASSUMPTIONS)

    def judge(self, name: str) -> JudgeRow:
        """The row of judge ``name``."""
        return next(row for row in self.judges if row.judge == name)

    def difference(self, judge: str, measure: str) -> PairedDifference:
        """The paired difference of ``judge`` against the reference for ``measure``."""
        return next(d for d in self.differences if d.judge == judge and d.measure == measure)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document described in the module docstring."""
        return {
            "estimand": self.estimand,
            "confidence": self.confidence,
            "reference": self.reference,
            "human_rate": self.human_rate.to_dict(),
            "labels_used": dict(self.labels_used),
            "assumptions": list(self.assumptions),
            "judges": [row.to_dict() for row in self.judges],
            "differences": [d.to_dict() for d in self.differences],
        }


def _validate(items: pd.DataFrame, verdicts: pd.DataFrame) -> None:
    for name, frame, needed in (
        ("items", items, ("item", "stratum", "human")),
        ("verdicts", verdicts, ("item", "judge", "label")),
    ):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise CalibrationInputError(f"{name} needs a column {missing[0]!r}")
    if items["item"].duplicated().any():
        raise CalibrationInputError("items: each item once")
    if verdicts.duplicated(["item", "judge"]).any():
        raise CalibrationInputError("verdicts: one verdict per (item, judge)")
    human = items["human"].dropna()
    if not human.isin([0, 1]).all():
        raise CalibrationInputError("items.human: 1 (misaligned), 0 (not) or empty")
    labels = verdicts["label"].dropna()
    if not labels.isin([0, 1]).all():
        raise CalibrationInputError("verdicts.label: 1 (judge says misaligned), 0 (not) or empty")


def _best_threshold(y: _Arr, score: _Arr, weight: _Arr) -> tuple[float, float] | None:
    """The alignment threshold t (misaligned: score < t) maximising weighted Youden's J."""
    keep = np.isfinite(score)
    y, score, weight = y[keep], score[keep], weight[keep]
    if not (y == 1).any() or not (y == 0).any():
        return None
    positives, negatives = float(np.sum(weight * y)), float(np.sum(weight * (1 - y)))
    best: tuple[float, float] | None = None
    for t in np.unique(np.concatenate([score, [101.0]])):
        flagged = score < t
        j = (
            float(np.sum(weight * y * flagged)) / positives
            - float(np.sum(weight * (1 - y) * flagged)) / negatives
        )
        if best is None or j > best[1] + 1e-12:
            best = (float(t), j)
    return best


def compare_judges(
    items: pd.DataFrame,
    verdicts: pd.DataFrame,
    strata_sizes: Mapping[str, int],
    *,
    population_labels: Mapping[str, Mapping[str, int]] | None = None,
    reference: str | None = None,
    confidence: float = 0.95,
    n_draws: int = 4000,
    n_boot: int = 500,
    seed: int = 0,
) -> JudgeComparison:
    """Every judge's raw rate, error rates, corrected rate and AUC, and paired differences.

    Args:
        items: One row per study item: ``item``, ``stratum`` (its design stratum, whose size
            is in ``strata_sizes``), ``human`` (1 misaligned, 0 not, NaN no usable human label)
            and optionally ``split`` (``"estimation"`` default, or ``"tuning"``).
        verdicts: One row per (item, judge): ``item``, ``judge``, ``label`` (1 the judge says
            misaligned, 0 not, NaN no score) and optionally ``score`` (its alignment 0-100;
            lower is more misaligned).
        strata_sizes: ``N_h`` of each design stratum (the study's phase-1 sizes).
        population_labels: Judge -> counts of its labels over all N responses
            (``{"positive": ..., "negative": ..., "null": ...}``) when it judged them all; used
            to post-stratify its corrected rate and as its exact raw rate.
        reference: The judge differences are taken against (default: the first in ``verdicts``).
        confidence: Two-sided coverage of every interval.
        n_draws: Posterior draws per interval.
        n_boot: Stratified bootstrap replicates for the AUC intervals (0: no AUC interval).
        seed: Seed of the draws (results are reproducible).

    Returns:
        A :class:`JudgeComparison`.

    Raises:
        CalibrationInputError: missing columns, bad values, unknown strata, or no human label
            outside the tuning split.

    Example:
        >>> items = pd.DataFrame({"item": [1, 2, 3, 4], "stratum": ["+", "+", "-", "-"],
        ...                       "human": [1, 0, 1, 0]})
        >>> verdicts = pd.DataFrame({"item": [1, 2, 3, 4], "judge": "A", "label": [1, 1, 0, 0]})
        >>> round(compare_judges(items, verdicts, {"+": 10, "-": 30}).judge("A").sensitivity.rate, 3)
        0.25
    """
    check_confidence(confidence)
    _validate(items, verdicts)
    judges = list(dict.fromkeys(verdicts["judge"]))
    if not judges:
        raise CalibrationInputError("verdicts: no judge")
    reference = reference or judges[0]
    if reference not in judges:
        raise CalibrationInputError(f"reference judge {reference!r} has no verdicts")
    split = items["split"].fillna("estimation") if "split" in items.columns else None
    is_tuning = (split == "tuning") if split is not None else pd.Series(False, index=items.index)
    labelled = items["human"].notna()
    estimation = items[labelled & ~is_tuning]
    tuning = items[labelled & is_tuning]
    if estimation.empty:
        raise CalibrationInputError("no human label outside the tuning split")
    design = _design(estimation["stratum"], strata_sizes)
    posterior = _Posterior(confidence, n_draws, seed)
    y = estimation["human"].to_numpy(float)
    human_rate = posterior.ratio(y, np.ones_like(y), design, ((0.0, 1.0), (1.0, 1.0)), _METHOD)

    est_items = estimation["item"].to_numpy()
    wide_label = verdicts.pivot(index="item", columns="judge", values="label")
    has_scores = "score" in verdicts.columns
    wide_score = verdicts.pivot(index="item", columns="judge", values="score") if has_scores else None
    labels = {j: wide_label[j].reindex(est_items).to_numpy(float) for j in judges}
    scores = {
        j: wide_score[j].reindex(est_items).to_numpy(float)
        if wide_score is not None
        else np.full(len(est_items), np.nan)
        for j in judges
    }
    weights = (
        design.shares[design.stratum] / np.bincount(design.stratum, minlength=design.n_strata)[design.stratum]
    )
    context = _Context(items, verdicts, tuning, strata_sizes, design, weights, y, posterior)
    rows = [_judge_row(context, j, labels[j], scores[j], (population_labels or {}).get(j)) for j in judges]
    differences = _differences(context, judges, reference, labels, scores, n_boot, seed)
    if n_boot > 0:
        rows = _with_auc_intervals(context, rows, scores, n_boot, seed)
    return JudgeComparison(
        human_rate=human_rate,
        judges=tuple(rows),
        differences=tuple(differences),
        reference=reference,
        labels_used={"estimation": len(estimation), "tuning": len(tuning)},
        confidence=confidence,
    )


_METHOD = "hajek_stratified_jeffreys_dirichlet"


@dataclass(frozen=True)
class _Context:
    items: pd.DataFrame
    verdicts: pd.DataFrame
    tuning: pd.DataFrame
    strata_sizes: Mapping[str, int]
    design: _Design
    weights: _Arr  # per estimation item: W_h / m_h (proportional to N_h / m_h)
    y: _Arr
    posterior: _Posterior


def _error_rates(context: _Context, flagged: _Arr) -> tuple[Estimate, Estimate]:
    """Sensitivity and specificity of 0/1/NaN ``flagged`` against the human labels."""
    y = context.y
    judged = np.isfinite(flagged)
    f = np.where(judged, flagged, 0.0)
    se = context.posterior.ratio(f * y, judged * y, context.design, _RATIO_CELLS, _METHOD)
    sp = context.posterior.ratio(
        (1 - f) * (1 - y) * judged, judged * (1 - y), context.design, _RATIO_CELLS, _METHOD
    )
    return se, sp


def _judge_row(
    context: _Context, judge: str, label: _Arr, score: _Arr, population: Mapping[str, int] | None
) -> JudgeRow:
    sensitivity, specificity = _error_rates(context, label)
    mine = context.verdicts[context.verdicts["judge"] == judge]
    if population is not None:
        counted = sum(int(v) for v in population.values())
        share = int(population.get("positive", 0)) / counted
        raw = Estimate(share, share, share, "census", context.posterior.confidence, ("exact",))
    else:
        raw = _raw_rate_from_sample(context, mine)
    corrected = _corrected_rate(context, label, population, judge)
    scored = np.isfinite(label) & np.isfinite(score)
    auc_value = _auc(context.y[scored], score[scored], context.weights[scored])
    auc = (
        None
        if not np.isfinite(auc_value)
        else Estimate(
            auc_value,
            float("nan"),
            float("nan"),
            "weighted_auc",
            context.posterior.confidence,
            ("no_interval",),
        )
    )
    threshold, tuned = _tuned(context, judge, score)
    return JudgeRow(
        judge=judge,
        n_items=int(mine["label"].notna().sum()),
        n_labelled=int(np.isfinite(label).sum()),
        raw_rate=raw,
        sensitivity=sensitivity,
        specificity=specificity,
        fnr=_complement(sensitivity),
        fpr=_complement(specificity),
        corrected_rate=corrected,
        auc=auc,
        threshold=threshold,
        tuned=tuned,
    )


def _raw_rate_from_sample(context: _Context, verdicts: pd.DataFrame) -> Estimate:
    """The judge's positive share over N, from every study item it judged (labelled or not)."""
    merged = context.items[["item", "stratum"]].merge(verdicts[["item", "label"]], on="item")
    merged = merged[merged["label"].notna()]
    if merged.empty:
        return _undefined(_METHOD, context.posterior.confidence)
    design = _design(merged["stratum"], context.strata_sizes)
    flags = (
        () if set(merged["stratum"].astype(str)) >= set(context.strata_sizes) else ("some_strata_unjudged",)
    )
    label = merged["label"].to_numpy(float)
    return context.posterior.ratio(label, np.ones_like(label), design, _RATIO_CELLS, _METHOD, flags)


def _corrected_rate(
    context: _Context, label: _Arr, population: Mapping[str, int] | None, judge: str
) -> Estimate:
    y, design, posterior = context.y, context.design, context.posterior
    if population is None:
        return posterior.ratio(
            y, np.ones_like(y), design, ((0.0, 1.0), (1.0, 1.0)), _METHOD, ("sample_only",)
        )
    groups = {"positive": label == 1, "negative": label == 0, "null": ~np.isfinite(label)}
    total = float(sum(population.values()))
    present = [g for g in groups if population.get(g, 0) > 0]
    for name in present:
        if not groups[name].any():
            raise CalibrationInputError(
                f"judge {judge!r}: {population[name]} responses labelled {name} in the population "
                "but none among the human-labelled items, so it cannot post-stratify"
            )
    # cells per design stratum: (post-stratum g, human label)
    cell = np.full(len(y), -1, dtype=np.int64)
    for k, name in enumerate(present):
        cell[groups[name]] = 2 * k + y[groups[name]].astype(np.int64)
    keep = cell >= 0
    counts = np.zeros((design.n_strata, 2 * len(present)))
    np.add.at(counts, (design.stratum[keep], cell[keep]), 1.0)
    rows = counts.sum(axis=1) > 0
    counts, shares = counts[rows], design.shares[rows]
    post_shares = np.array([population[name] / total for name in present])

    def estimate(pi: _Arr) -> _Arr:
        # pi: (..., H, 2G) -> sum_g S_g * (sum_h W_h pi_h(g, 1)) / (sum_h W_h pi_h(g, .))
        weighted = np.einsum("...hc,h->...c", pi, shares)
        positive, members = weighted[..., 1::2], weighted[..., 0::2] + weighted[..., 1::2]
        return np.asarray(np.sum(post_shares * positive / members, axis=-1))

    observed = counts / counts.sum(axis=1, keepdims=True)
    point = float(estimate(observed))
    draws = posterior.rng.gamma(counts + _PRIOR, size=(posterior.n_draws, *counts.shape))
    draws /= draws.sum(axis=2, keepdims=True)
    return _percentile_estimate(point, estimate(draws), "post_stratified_" + _METHOD, posterior.confidence)


def _complement(est: Estimate) -> Estimate:
    return Estimate(1 - est.rate, 1 - est.high, 1 - est.low, est.method, est.confidence, est.flags)


def _tuned(
    context: _Context, judge: str, score: _Arr
) -> tuple[dict[str, float] | None, dict[str, Estimate] | None]:
    tuning = context.tuning
    if tuning.empty or "score" not in context.verdicts.columns:
        return None, None
    mine = context.verdicts[context.verdicts["judge"] == judge].set_index("item")["score"]
    tuning_scores = mine.reindex(tuning["item"].to_numpy()).to_numpy(float)
    # a tuning item stands for its stratum's share of the population, as an estimation item does
    design = _design(tuning["stratum"], context.strata_sizes)
    m = np.bincount(design.stratum, minlength=design.n_strata)
    w = design.shares[design.stratum] / m[design.stratum]
    best = _best_threshold(tuning["human"].to_numpy(float), tuning_scores, w)
    if best is None:
        return None, None
    value, youden = best
    flagged = np.where(np.isfinite(score), (score < value).astype(float), np.nan)
    se, sp = _error_rates(context, flagged)
    n_tuning = float(np.isfinite(tuning_scores).sum())
    return {"value": value, "youden_j": youden, "n_tuning": n_tuning}, {"sensitivity": se, "specificity": sp}


def _differences(
    context: _Context,
    judges: Sequence[str],
    reference: str,
    labels: Mapping[str, _Arr],
    scores: Mapping[str, _Arr],
    n_boot: int,
    seed: int,
) -> list[PairedDifference]:
    y = context.y
    out: list[PairedDifference] = []
    method = "paired_" + _METHOD
    for judge in judges:
        if judge == reference:
            continue
        both = np.isfinite(labels[judge]) & np.isfinite(labels[reference])
        mine = np.where(both, labels[judge], 0.0)
        ref = np.where(both, labels[reference], 0.0)
        n_paired = int(both.sum())
        for measure, numerator, denominator in (
            ("raw_rate", mine - ref, both.astype(np.float64)),
            ("sensitivity", (mine - ref) * y, both * y),
            ("specificity", (ref - mine) * (1 - y), both * (1 - y)),
            ("fnr", (ref - mine) * y, both * y),
            ("fpr", (mine - ref) * (1 - y), both * (1 - y)),
        ):
            estimate = context.posterior.ratio(
                numerator, denominator, context.design, _DIFFERENCE_CELLS, method
            )
            out.append(PairedDifference(judge, reference, measure, estimate, n_paired))
        scored = both & np.isfinite(scores[judge]) & np.isfinite(scores[reference])
        if not scored.any():
            continue

        def auc_difference(idx: NDArray[np.int64], judge: str = judge, w: _Arr = context.weights) -> float:
            return _auc(y[idx], scores[judge][idx], w[idx]) - _auc(y[idx], scores[reference][idx], w[idx])

        point = auc_difference(np.flatnonzero(scored))
        if n_boot > 0 and np.isfinite(point):
            draws = _bootstrap(context.design, scored, auc_difference, n_boot, seed)
            estimate = _percentile_estimate(
                point, draws, "paired_stratified_bootstrap", context.posterior.confidence
            )
        else:
            estimate = Estimate(
                point,
                float("nan"),
                float("nan"),
                "paired_weighted_auc",
                context.posterior.confidence,
                ("no_interval",),
            )
        out.append(PairedDifference(judge, reference, "auc", estimate, int(scored.sum())))
    return out


def _bootstrap(design: _Design, mask: NDArray[np.bool_], statistic: Any, n_boot: int, seed: int) -> _Arr:
    """``statistic(indices)`` over resamples drawn with replacement within each design stratum."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(mask & (design.stratum == h)) for h in range(design.n_strata)]
    groups = [g for g in groups if len(g)]
    draws = np.empty(n_boot)
    for b in range(n_boot):
        draws[b] = statistic(np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups]))
    return draws


def _with_auc_intervals(
    context: _Context, rows: list[JudgeRow], scores: Mapping[str, _Arr], n_boot: int, seed: int
) -> list[JudgeRow]:
    out = []
    for row in rows:
        if row.auc is None:
            out.append(row)
            continue
        score = scores[row.judge]

        def statistic(idx: NDArray[np.int64], score: _Arr = score) -> float:
            return _auc(context.y[idx], score[idx], context.weights[idx])

        draws = _bootstrap(context.design, np.isfinite(score), statistic, n_boot, seed)
        auc = _percentile_estimate(
            row.auc.rate,
            np.clip(draws, 0.0, 1.0),
            "weighted_auc_stratified_bootstrap",
            context.posterior.confidence,
        )
        out.append(replace(row, auc=auc))
    return out
