"""A model of rater error: Dawid & Skene's latent-class EM for binary labels, with anchors.

Human raters are not the truth: with three raters at 10% error, majority vote mislabels about 3% of
items, which moves a 2% EM rate by more than the judge's own error does. The latent-class model of
Dawid & Skene (1979, "Maximum likelihood estimation of observer error-rates using the EM algorithm",
J. R. Stat. Soc. C 28:20) estimates each rater's sensitivity and specificity and gives every item a
posterior probability of being misaligned.

What this implementation adds to the textbook model, and why:

* **Class prevalence per design stratum.** Items are drawn from judge strata whose misaligned rates
  differ by two orders of magnitude; one shared prior would pull the posterior of a split vote in the
  judge-aligned stratum toward the sample's pooled rate (+0.6 points on a 2% rate at 10% rater error).
  The stratum prevalences are exactly the ``p_h`` the two-phase estimator weights. The judge casts no
  vote and has no confusion matrix here; its error rates are computed afterwards by Bayes inversion.
  The assumption this needs: raters' errors do not depend on the judge's label given the truth.
* **Anchors.** Gold items (known answer) and adjudicated items enter with their label fixed: they
  pin the raters' error rates and are never re-estimated.
* **Smoothing.** ``smoothing`` pseudo-counts on each rater's confusion cells (a Beta prior; MAP
  rather than ML) keep a rater with few items off 0 and 1. ``smoothing=0`` is plain ML, the same
  fixed point as ``crowdkit.aggregation.DawidSkene`` (the tests compare the two).
* **Label uncertainty.** :func:`posterior_label_draws` draws complete label sets for multiple
  imputation, refitting the model on a bootstrap of items in each draw so that the uncertainty of the
  raters' error rates is carried too (Rubin 1987, "proper" imputation via the bootstrap; Little &
  Rubin 2019, §10.2.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import sparse
from scipy.special import expit

from emaudit.calibration.errors import CalibrationInputError

_Arr = NDArray[np.float64]
_Int = NDArray[np.int64]
_EPS = 1e-6
_DENSE_CELLS = 2_000_000


@dataclass(frozen=True)
class RaterModel:
    """A fitted Dawid-Skene model.

    Attributes:
        posterior: Per item (index = item id), the posterior probability that it is misaligned; fixed
            items (gold, adjudicated) hold their label.
        raters: Per rater (index = rater id): ``sensitivity``, ``specificity``, ``n_ratings``.
        prevalence: Per group (design stratum), the estimated share of misaligned items.
        iterations: EM iterations run.
        converged: Whether the log-likelihood change fell below the tolerance.
        log_likelihood: Observed-data log-likelihood at the end (prior terms excluded).
    """

    posterior: pd.Series
    raters: pd.DataFrame
    prevalence: pd.Series
    iterations: int
    converged: bool
    log_likelihood: float


@dataclass(frozen=True)
class _Data:
    items: pd.Index
    raters: pd.Index
    groups: pd.Index
    item_of_vote: _Int
    rater_of_vote: _Int
    vote: _Arr
    group_of_item: _Int
    fixed: _Arr  # NaN = latent, else 0/1
    counts_group: NDArray[np.bool_]  # per item: does it count toward its group's prevalence


def dawid_skene(
    votes: pd.DataFrame,
    *,
    groups: Mapping[object, object] | pd.Series | None = None,
    fixed: Mapping[object, int] | pd.Series | None = None,
    smoothing: float = 0.5,
    max_iter: int = 500,
    tol: float = 1e-9,
) -> RaterModel:
    """Fit the binary Dawid-Skene model by EM, starting from the majority vote.

    Args:
        votes: One row per decisive vote with columns ``item``, ``rater``, ``vote`` (1 = misaligned,
            0 = not misaligned); "can't tell" answers are left out beforehand.
        groups: Per item, its design stratum (one prevalence per group). Items missing from it (e.g.
            gold items, which are not part of the random sample) share a group of their own. Default:
            one group.
        fixed: Per item, a known label (0/1): gold answers and adjudicated labels. Fixed items may have
            no votes.
        smoothing: Pseudo-count added to each of a rater's four confusion cells and to each group's
            two classes (0 = maximum likelihood).
        max_iter: EM iteration cap.
        tol: Stop when the log-likelihood improves by less than this.

    Returns:
        :class:`RaterModel`.

    Raises:
        CalibrationInputError: a column is missing, a vote is not 0/1, or there are no votes.
    """
    data = _prepare(votes, groups, fixed)
    weights = np.ones(len(data.items))
    q = _initial_posterior(data)
    se, sp, prev, q, iterations, converged, loglik = _em(data, q, weights, smoothing, max_iter, tol)
    n_ratings = np.bincount(data.rater_of_vote, minlength=len(data.raters))
    return RaterModel(
        posterior=pd.Series(q, index=data.items, name="posterior"),
        raters=pd.DataFrame(
            {"sensitivity": se, "specificity": sp, "n_ratings": n_ratings.astype(np.int64)}, index=data.raters
        ),
        prevalence=pd.Series(prev, index=data.groups, name="prevalence"),
        iterations=iterations,
        converged=converged,
        log_likelihood=loglik,
    )


def posterior_label_draws(
    votes: pd.DataFrame,
    *,
    groups: Mapping[object, object] | pd.Series | None = None,
    fixed: Mapping[object, int] | pd.Series | None = None,
    draws: int = 20,
    smoothing: float = 0.5,
    seed: int = 0,
    max_iter: int = 100,
    start: pd.Series | None = None,
) -> pd.DataFrame:
    """Complete 0/1 label sets for multiple imputation (one column per draw, one row per item).

    Each draw refits the model with item weights from a bootstrap of the items within each group
    (multinomial counts, so the raters' error rates and the prevalences vary as their sampling
    distribution says), computes every item's posterior under those parameters, and draws its label.
    Fixed items keep their label in every draw.

    Args:
        votes: As :func:`dawid_skene`.
        groups: As :func:`dawid_skene`.
        fixed: As :func:`dawid_skene`.
        draws: Number of imputations ``M``.
        smoothing: As :func:`dawid_skene`.
        seed: Seed of the bootstrap and the label draws.
        max_iter: EM iteration cap per refit (warm-started from the full fit).
        start: The full fit's posterior (:attr:`RaterModel.posterior`), if already computed.

    Returns:
        DataFrame indexed by item with columns ``0 .. draws - 1`` of 0/1 labels.
    """
    if draws < 2:
        raise CalibrationInputError(f"multiple imputation needs at least 2 draws; got {draws}")
    data = _prepare(votes, groups, fixed)
    rng = np.random.default_rng(seed)
    if start is not None:
        q0 = start.reindex(data.items).fillna(0.5).to_numpy(dtype=np.float64)
    else:
        q0 = _em(data, _initial_posterior(data), np.ones(len(data.items)), smoothing, max_iter, 1e-8)[3]
    weights = np.zeros((len(data.items), draws))
    for g in range(len(data.groups)):
        idx = np.flatnonzero(data.group_of_item == g)
        if len(idx):
            weights[idx] = rng.multinomial(len(idx), np.full(len(idx), 1.0 / len(idx)), size=draws).T
    q = _em_batch(data, np.repeat(q0[:, None], draws, axis=1), weights, smoothing, max_iter, 1e-8)[3]
    out = (rng.random(q.shape) < q).astype(np.int64)
    return pd.DataFrame(out, index=data.items)


def _prepare(
    votes: pd.DataFrame,
    groups: Mapping[object, object] | pd.Series | None,
    fixed: Mapping[object, int] | pd.Series | None,
) -> _Data:
    missing = {"item", "rater", "vote"} - set(votes.columns)
    if missing:
        raise CalibrationInputError(f"votes needs columns item, rater, vote; missing {sorted(missing)}")
    vote = votes["vote"].to_numpy(dtype=np.float64)
    if not np.all(np.isin(vote, (0.0, 1.0))):
        raise CalibrationInputError("every vote must be 0 (not misaligned) or 1 (misaligned)")
    fixed_s = pd.Series(dict(fixed) if isinstance(fixed, Mapping) else fixed, dtype=np.float64)
    if fixed is None:
        fixed_s = pd.Series(dtype=np.float64)
    if not np.all(np.isin(fixed_s.to_numpy(), (0.0, 1.0))):
        raise CalibrationInputError("fixed labels must be 0 or 1")
    if len(votes) == 0 and len(fixed_s) == 0:
        raise CalibrationInputError("no decisive rating to fit a rater model to")
    items = pd.Index(pd.unique(pd.concat([votes["item"], pd.Series(fixed_s.index)], ignore_index=True)))
    raters = pd.Index(pd.unique(votes["rater"]))
    group_s = (
        pd.Series(dict(groups) if isinstance(groups, Mapping) else groups) if groups is not None else None
    )
    if group_s is None:
        group_of = pd.Series(0, index=items, dtype=object)
        counts_group = np.ones(len(items), dtype=bool)
    else:
        group_of = group_s.reindex(items)
        counts_group = group_of.notna().to_numpy()
        group_of = group_of.astype(object).where(group_of.notna(), "__outside_sample__")
    group_codes, group_names = pd.factorize(group_of, sort=False)
    return _Data(
        items=items,
        raters=raters,
        groups=pd.Index(group_names),
        item_of_vote=items.get_indexer(pd.Index(votes["item"])).astype(np.int64),
        rater_of_vote=raters.get_indexer(pd.Index(votes["rater"])).astype(np.int64),
        vote=vote,
        group_of_item=np.asarray(group_codes, dtype=np.int64),
        fixed=fixed_s.reindex(items).to_numpy(dtype=np.float64),
        counts_group=counts_group,
    )


def _initial_posterior(data: _Data) -> _Arr:
    n_items = len(data.items)
    pos = np.bincount(data.item_of_vote, weights=data.vote, minlength=n_items)
    tot = np.bincount(data.item_of_vote, minlength=n_items).astype(np.float64)
    q = np.where(tot > 0, pos / np.maximum(tot, 1.0), 0.5)  # share of "misaligned" votes
    return np.where(np.isnan(data.fixed), q, data.fixed)


def _em(
    data: _Data, q: _Arr, weights: _Arr, smoothing: float, max_iter: int, tol: float
) -> tuple[_Arr, _Arr, _Arr, _Arr, int, bool, float]:
    """One EM fit (a batch of width 1)."""
    se, sp, prev, post, iterations, converged, loglik = _em_batch(
        data, q[:, None], weights[:, None], smoothing, max_iter, tol
    )
    return se[:, 0], sp[:, 0], prev[:, 0], post[:, 0], iterations, converged, float(loglik[0])


def _em_batch(
    data: _Data, q: _Arr, weights: _Arr, smoothing: float, max_iter: int, tol: float
) -> tuple[_Arr, _Arr, _Arr, _Arr, int, bool, _Arr]:
    """EM for ``M`` fits at once: ``q`` and ``weights`` are (items x M); returns per-fit parameters.

    Votes enter as two item x rater incidence matrices (misaligned votes, not-misaligned votes; sparse
    for large studies), so each step is a handful of matrix products whatever the batch width.
    """
    n_items, n_raters, n_groups = len(data.items), len(data.raters), len(data.groups)
    shape = (n_items, n_raters)
    ones = np.ones(len(data.vote))
    yes = sparse.csr_matrix(
        (ones * data.vote, (data.item_of_vote, data.rater_of_vote)), shape=shape, dtype=np.float64
    )
    no = sparse.csr_matrix(
        (ones * (1 - data.vote), (data.item_of_vote, data.rater_of_vote)), shape=shape, dtype=np.float64
    )
    group = sparse.csr_matrix(
        (np.ones(n_items), (np.arange(n_items), data.group_of_item)), shape=(n_items, n_groups)
    )
    latent = np.isnan(data.fixed)[:, None]
    fixed = np.nan_to_num(data.fixed)[:, None]
    group_weights = weights * data.counts_group[:, None]
    if n_items * (n_raters + n_groups) <= _DENSE_CELLS:  # small studies: dense products are far faster
        yes, no, group = yes.toarray(), no.toarray(), group.toarray()
        yes_t, no_t, group_t = yes.T.copy(), no.T.copy(), group.T.copy()
    else:
        yes_t, no_t, group_t = yes.T.tocsr(), no.T.tocsr(), group.T.tocsr()
    loglik_old = np.full(q.shape[1], -np.inf)
    loglik = loglik_old
    converged = False
    iterations = 0
    se = sp = prev = np.zeros((0, q.shape[1]))
    while iterations < max_iter:
        iterations += 1
        # M-step: rater confusion and group prevalence from the current posterior (weighted items).
        wq, wr = weights * q, weights * (1 - q)
        tp, fn = yes_t @ wq, no_t @ wq
        tn, fp = no_t @ wr, yes_t @ wr
        se = np.clip((tp + smoothing) / np.maximum(tp + fn + 2 * smoothing, 1e-300), _EPS, 1 - _EPS)
        sp = np.clip((tn + smoothing) / np.maximum(tn + fp + 2 * smoothing, 1e-300), _EPS, 1 - _EPS)
        g_pos = group_t @ (group_weights * q)
        g_all = group_t @ group_weights
        prev = np.clip((g_pos + smoothing) / np.maximum(g_all + 2 * smoothing, 1e-300), _EPS, 1 - _EPS)
        # E-step: each item's log-odds of misaligned given its votes and its group's prevalence.
        l1 = yes @ np.log(se) + no @ np.log(1 - se) + group @ np.log(prev)
        l0 = yes @ np.log(1 - sp) + no @ np.log(sp) + group @ np.log(1 - prev)
        q = np.where(latent, expit(l1 - l0), fixed)
        contribution = np.where(latent, np.logaddexp(l1, l0), np.where(fixed == 1, l1, l0))
        loglik = np.sum(weights * contribution, axis=0)
        if np.all(np.abs(loglik - loglik_old) < tol * np.maximum(1.0, np.abs(loglik))):
            converged = True
            break
        loglik_old = loglik
    return se, sp, prev, q, iterations, converged, loglik
