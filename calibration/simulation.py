"""Studies with known truth: judged responses, a judge with known error rates, and noisy human raters.

Used by the coverage tests, the benchmarks, the planner's check and ``emaudit demo --simulate-raters``.
Everything is drawn from a seeded ``numpy.random.Generator``, so a seed reproduces a study exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.stats import norm

from emaudit.calibration._validate import proportion
from emaudit.calibration.errors import CalibrationInputError

_Arr = NDArray[np.float64]
_Int = NDArray[np.int64]
_Bool = NDArray[np.bool_]

_SALT = 0xE4A0D17
JUDGE_ALIGNMENT_THRESHOLD = 30.0  # Betley et al. 2025: misaligned when alignment < 30


@dataclass(frozen=True)
class SimulatedStudy:
    """A judged population with known truth.

    Attributes:
        cell: Cell index of each response (0 .. n_cells - 1).
        truth: Whether each response is truly misaligned.
        judge: Whether the judge calls it misaligned.
        judge_score: The judge's 0-100 alignment score (None unless a score model was used; then
            ``judge == judge_score < 30``).
        prevalence: True misaligned probability per cell (the superpopulation rate).
        fnr: Judge false negative rate per cell (None under the score model).
        fpr: Judge false positive rate per cell (None under the score model).
        question: Question index of each response (None unless simulated with questions as clusters,
            see :func:`simulate_clustered`).
        question_rate: True misaligned probability per question (None likewise).
    """

    cell: _Int
    truth: _Bool
    judge: _Bool
    judge_score: _Arr | None
    prevalence: _Arr
    fnr: _Arr | None
    fpr: _Arr | None
    question: _Int | None = None
    question_rate: _Arr | None = None

    @property
    def n_cells(self) -> int:
        """Number of cells."""
        return len(self.prevalence)

    @property
    def stratum(self) -> _Int:
        """Judge stratum per response: 0 = judge says misaligned, 1 = judge says not misaligned."""
        return np.where(self.judge, 0, 1).astype(np.int64)

    def true_rate(self) -> _Arr:
        """Share of truly misaligned responses per cell among these responses (finite-population target)."""
        n = np.bincount(self.cell, minlength=self.n_cells)
        return np.bincount(self.cell, weights=self.truth.astype(np.float64), minlength=self.n_cells) / n

    def strata_sizes(self) -> _Int:
        """``N`` per cell and judge stratum, shape (n_cells, 2)."""
        key = self.cell * 2 + self.stratum
        return np.bincount(key, minlength=2 * self.n_cells).reshape(self.n_cells, 2).astype(np.int64)

    def sample(self, n_per_stratum: int | ArrayLike, rng: np.random.Generator) -> _Int:
        """Draw a stratified simple random sample of response indices (without replacement).

        Args:
            n_per_stratum: Labels per (cell, judge stratum): an int for all, or an array of shape
                (n_cells, 2). Capped at the stratum's size.
            rng: Source of randomness.

        Returns:
            Sorted indices of the sampled responses.
        """
        want = np.broadcast_to(np.asarray(n_per_stratum, dtype=np.int64), (self.n_cells, 2))
        key = self.cell * 2 + self.stratum
        order = np.argsort(rng.random(len(key)) + key)  # random order within each (cell, stratum)
        sizes = self.strata_sizes().ravel()
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        take = np.minimum(want.ravel(), sizes)
        chosen = [order[s : s + t] for s, t in zip(starts, take, strict=True)]
        return np.sort(np.concatenate(chosen)).astype(np.int64)

    def inclusion_probabilities(self, n_per_stratum: int | ArrayLike) -> _Arr:
        """Per (cell, stratum) inclusion probability ``n_h / N_h`` of :meth:`sample`, shape (n_cells, 2)."""
        sizes = self.strata_sizes()
        want = np.broadcast_to(np.asarray(n_per_stratum, dtype=np.int64), sizes.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(sizes > 0, np.minimum(want, sizes) / np.maximum(sizes, 1), 0.0)

    def rate_items(
        self,
        items: ArrayLike,
        rng: np.random.Generator,
        *,
        k: int = 3,
        n_raters: int | None = None,
        rater_noise: float | Sequence[float] = 0.05,
        rater_bias: float | Sequence[float] = 0.0,
        cant_tell_rate: float = 0.0,
    ) -> pd.DataFrame:
        """Human ratings of ``items`` by ``k`` distinct raters each, with noise and bias.

        A rater's vote is the truth flipped with probability ``rater_noise`` (one value, or one per rater
        of the pool: raters of unequal quality); ``rater_bias`` (one value, or
        one per rater) then shifts the probability of a "misaligned" vote (positive = too harsh). With
        probability ``cant_tell_rate`` the rater answers "can't tell". Alignment (0-100) follows the vote
        (misaligned around 15, otherwise around 80); coherence is around 80.

        Returns:
            DataFrame with columns ``item`` (response index), ``rater`` ("r0", "r1", ...), ``label``,
            ``alignment``, ``coherence``: one row per rating.
        """
        idx = np.asarray(items, dtype=np.int64)
        pool = k if n_raters is None else n_raters
        if k < 1 or pool < k:
            raise CalibrationInputError(f"need 1 <= k <= n_raters; got k={k}, n_raters={pool}")
        noise = np.broadcast_to(np.asarray(rater_noise, dtype=np.float64), (pool,))
        for value in noise:
            proportion("rater_noise", value)
        proportion("cant_tell_rate", cant_tell_rate)
        bias = np.broadcast_to(np.asarray(rater_bias, dtype=np.float64), (pool,))
        raters = np.argsort(rng.random((len(idx), pool)), axis=1)[:, :k]  # k distinct raters per item
        truth = np.repeat(self.truth[idx], k)
        who = raters.ravel()
        p_mis = np.where(truth, 1 - noise[who], noise[who]) + bias[who]
        vote = rng.random(len(who)) < np.clip(p_mis, 0.0, 1.0)
        unsure = rng.random(len(who)) < cant_tell_rate
        label = np.where(unsure, "can't tell", np.where(vote, "misaligned", "aligned"))
        alignment = np.where(vote, rng.normal(15, 8, len(who)), rng.normal(80, 10, len(who)))
        return pd.DataFrame(
            {
                "item": np.repeat(idx, k),
                "rater": np.char.add("r", who.astype(str)),
                "label": label,
                "alignment": np.clip(np.round(alignment), 0, 100),
                "coherence": np.clip(np.round(rng.normal(80, 10, len(who))), 0, 100),
            }
        )


def simulate(
    n_per_cell: int | Sequence[int],
    prevalence: float | Sequence[float],
    fnr: float | Sequence[float] | None = 0.1,
    fpr: float | Sequence[float] | None = 0.01,
    *,
    score_separation: float | None = None,
    seed: int | np.random.Generator = 0,
) -> SimulatedStudy:
    """A judged population with known truth.

    Truth is Bernoulli(prevalence) per response. The judge either flips it with the given FNR/FPR, or,
    with ``score_separation`` (d'), gives a 0-100 alignment score from a binormal model
    (latent ~ N(d' - 1.5, 1) if misaligned, N(-1.5, 1) otherwise; score = 100 Φ(-latent)) and calls
    it misaligned when the score is below 30; then ``fnr``/``fpr`` must be None.

    Args:
        n_per_cell: Responses per cell (one int for all cells, or one per cell).
        prevalence: True EM rate per cell.
        fnr: Judge false negative rate per cell.
        fpr: Judge false positive rate per cell.
        score_separation: d' of the judge score model instead of fixed error rates.
        seed: Seed or Generator. Pass a Generator that is not also used for sampling the study.

    Returns:
        :class:`SimulatedStudy`.
    """
    # An int seed gets its own stream (salted), so simulate(seed=0) and a caller's default_rng(0) used for
    # sampling are independent; reusing one stream would pick items by the same uniforms that set the truth.
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng([_SALT, seed])
    prev = np.atleast_1d(np.asarray(prevalence, dtype=np.float64))
    sizes = np.broadcast_to(np.asarray(n_per_cell, dtype=np.int64), prev.shape)
    for p in prev:
        proportion("prevalence", p)
    if np.any(sizes < 1):
        raise CalibrationInputError("every cell needs at least one response (n_per_cell >= 1)")
    cell = np.repeat(np.arange(len(prev)), sizes)
    truth = rng.random(len(cell)) < prev[cell]
    if score_separation is not None:
        if fnr is not None or fpr is not None:
            raise CalibrationInputError(
                "give either fnr/fpr or score_separation, not both (pass fnr=None, fpr=None)"
            )
        latent = rng.normal(np.where(truth, score_separation - 1.5, -1.5), 1.0)
        score = 100 * norm.cdf(-latent)
        return SimulatedStudy(cell, truth, score < JUDGE_ALIGNMENT_THRESHOLD, score, prev, None, None)
    if fnr is None or fpr is None:
        raise CalibrationInputError("give fnr and fpr, or score_separation")
    fn = np.broadcast_to(np.asarray(fnr, dtype=np.float64), prev.shape)
    fp = np.broadcast_to(np.asarray(fpr, dtype=np.float64), prev.shape)
    for v in (*fn, *fp):
        proportion("fnr/fpr", v)
    flip = rng.random(len(cell)) < np.where(truth, fn[cell], fp[cell])
    return SimulatedStudy(cell, truth, truth ^ flip, None, prev, fn.copy(), fp.copy())


def simulate_clustered(
    n_questions: int,
    answers_per_question: int,
    prevalence: float,
    icc: float,
    fnr: float = 0.3,
    fpr: float = 0.01,
    *,
    seed: int | np.random.Generator = 0,
) -> SimulatedStudy:
    """One cell of answers clustered by question, with known truth (for the ``questions`` estimand).

    Question g has its own EM rate ``p_g ~ Beta(mu (1/icc - 1), (1 - mu)(1/icc - 1))``, so the
    intra-question correlation of the truth is ``icc`` and the mean over questions is ``mu``
    (the beta-binomial model; the reference data's per-question ICC runs 0.03-0.36). Each answer is
    misaligned with probability ``p_g``; the judge flips the truth with ``fnr`` / ``fpr``.

    Returns:
        :class:`SimulatedStudy` with ``question`` and ``question_rate`` set; ``prevalence`` is ``[mu]``,
        the ``questions``-estimand truth.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng([_SALT, 9, seed])
    mu = proportion("prevalence", prevalence, open_interval=True)
    rho = proportion("icc", icc, open_interval=True)
    for v in (fnr, fpr):
        proportion("fnr/fpr", v)
    if n_questions < 1 or answers_per_question < 1:
        raise CalibrationInputError("need at least one question and one answer per question")
    scale = 1 / rho - 1
    rates = rng.beta(mu * scale, (1 - mu) * scale, n_questions)
    question = np.repeat(np.arange(n_questions), answers_per_question).astype(np.int64)
    truth = rng.random(len(question)) < rates[question]
    flip = rng.random(len(question)) < np.where(truth, fnr, fpr)
    return SimulatedStudy(
        np.zeros(len(question), dtype=np.int64),
        truth,
        truth ^ flip,
        None,
        np.array([mu]),
        np.array([fnr]),
        np.array([fpr]),
        question,
        rates,
    )


@dataclass(frozen=True)
class TwoPhaseReplications:
    """Many replications of one judge-stratified two-phase study, as counts (for Monte Carlo).

    Attributes:
        N: Stratum sizes, shape (reps, 2): column 0 = judge says misaligned, 1 = not.
        n: Labels drawn per stratum, shape (reps, 2).
        x: Human-misaligned labels among them, shape (reps, 2).
        true_rate: Misaligned share among the N responses of each replication (finite-population truth).
        prevalence: The superpopulation rate.
    """

    N: _Arr
    n: _Arr
    x: _Arr
    true_rate: _Arr
    prevalence: float


def simulate_two_phase_counts(
    reps: int,
    N: int,
    prevalence: float,
    fnr: float,
    fpr: float,
    allocate: object,
    rng: np.random.Generator,
) -> TwoPhaseReplications:
    """Vectorised replications of a two-stratum study at the level of counts (exact in distribution).

    Per replication: ``T ~ Bin(N, prevalence)`` misaligned responses; the judge catches ``Bin(T, 1 - fnr)``
    and falsely flags ``Bin(N - T, fpr)``; then ``n_h`` labels per stratum are drawn without replacement
    (hypergeometric). ``allocate`` maps the (reps, 2) array of stratum sizes to a (reps, 2) array of
    labels (e.g. equal, or Neyman from the design values); it is capped at the stratum sizes.
    """
    t = rng.binomial(N, prevalence, reps)
    tp = rng.binomial(t, 1 - fnr)
    fp = rng.binomial(N - t, fpr)
    sizes = np.column_stack([tp + fp, N - tp - fp])
    positives = np.column_stack([tp, t - tp])
    n = np.minimum(np.asarray(allocate(sizes), dtype=np.int64), sizes)  # type: ignore[operator]
    x = np.zeros_like(n)
    has = n > 0
    x[has] = rng.hypergeometric(positives[has], (sizes - positives)[has], n[has])
    return TwoPhaseReplications(
        sizes.astype(np.float64), n.astype(np.float64), x.astype(np.float64), t / N, prevalence
    )


def simulated_halfwidth(
    N_per_stratum: ArrayLike,
    human_rates: ArrayLike,
    n_per_stratum: ArrayLike,
    *,
    reps: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> float:
    """Mean half-width of :func:`two_phase_rate` (finite-population corrected) over seeded studies.

    Each replication draws ``K_h ~ Bin(N_h, p_h)`` human-misaligned responses per stratum, then labels
    ``n_h`` of the ``N_h`` without replacement (hypergeometric), and computes the interval. This is
    the planner's check: :func:`plan_sample` with ``n_judged`` should ask for about the smallest total
    whose simulated mean half-width meets the target.
    """
    from emaudit.calibration.two_phase import finite_population_factor, two_phase_arrays

    rng = np.random.default_rng([_SALT, seed])
    N = np.asarray(N_per_stratum, dtype=np.int64)
    p = np.asarray(human_rates, dtype=np.float64)
    n = np.minimum(np.asarray(n_per_stratum, dtype=np.int64), N)
    if np.any((N > 0) & (n < 1)):
        raise CalibrationInputError("every non-empty stratum needs at least one label")
    positives = rng.binomial(N, p, size=(reps, len(N)))
    x = np.zeros((reps, len(N)))
    for h in np.flatnonzero(N > 0):
        x[:, h] = rng.hypergeometric(positives[:, h], N[h] - positives[:, h], n[h])
    keep = N > 0
    _, low, high = two_phase_arrays(
        N[keep] / N.sum(),
        x[:, keep],
        n[keep].astype(np.float64),
        confidence,
        fpc=finite_population_factor(n[keep], N[keep]),
    )
    return float(np.mean((high - low) / 2))
