"""Intervals for the ``questions`` estimand: answers cluster by question, questions are the sampling unit.

An EM evaluation asks a handful of questions many times each. Answers to one question share its
content, so they are correlated: the EM rate of "these questions" (the ``responses`` estimand) has a
binomial-sized interval, but a claim about questions in general (the ``questions`` estimand) must treat
questions as clusters. Both estimators here keep the point estimate of the ``responses`` estimators (the
raw share, or the two-phase stratified mean) and replace the interval:

* ``"linearization"`` (default): the Taylor-linearised (sandwich) variance with questions as ultimate
  clusters (Wolter, *Introduction to Variance Estimation*, 2nd ed., §6; Cameron & Miller 2015, "A
  practitioner's guide to cluster-robust inference", J. Hum. Resour. 50:317, §VI), with the
  small-sample factor ``G / (G - 1)`` (CR1) and ``G - 1`` degrees of freedom. For a raw rate the limits
  are Korn & Graubard's (1998) Clopper-Pearson limits at the df-adjusted effective sample size; for the
  two-phase rate the sandwich is split: the
  label-sampling part is left to the MOVER-Wilson limits of the ``responses`` interval (which keep their
  coverage with 1-3 human positives in a stratum, where any Wald-type variance does not), the rest is
  the questions' share, and the two are combined by MOVER (Zou & Donner 2008).
* ``"bootstrap"``: the cluster (question) bootstrap, percentile limits (Davison & Hinkley 1997, §3.8).

``benchmarks/question_coverage.py`` compares the two on simulated studies whose per-question rates
vary like the reference data (ICC 0.03-0.36, G = 8, 24, 48): the bootstrap under-covers everywhere
(0.78-0.91), linearisation holds >= 0.93 for G >= 24 and is the default. At G = 8 no method reaches
0.93 when the ICC is high; the interval then carries a ``"few_questions"`` flag.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit, logit
from scipy.stats import beta, norm
from scipy.stats import t as student_t

from emaudit.calibration._validate import check_confidence
from emaudit.calibration.binomial import clopper_pearson_ci
from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.estimate import Estimate
from emaudit.calibration.two_phase import finite_population_factor, two_phase_arrays

ClusterMethod = Literal["linearization", "bootstrap"]
CLUSTER_METHODS: tuple[ClusterMethod, ...] = ("linearization", "bootstrap")
_Arr = NDArray[np.float64]


def cluster_rate(
    positives: ArrayLike,
    totals: ArrayLike,
    confidence: float = 0.95,
    *,
    method: ClusterMethod = "linearization",
    n_boot: int = 2000,
    seed: int = 0,
) -> Estimate:
    """A raw rate ``sum y_g / sum m_g`` with questions as clusters (``questions`` estimand).

    The interval is Korn & Graubard's (1998, "Confidence intervals for proportions with small expected
    number of positive counts estimated from survey data", Surv. Methodol. 24:193): Clopper-Pearson at
    the effective sample size ``p (1 - p) / V`` with the CR1 sandwich ``V``, scaled by
    ``(z / t_{G-1})^2``. On skewed per-question rates it covers where a symmetric or logit-t interval
    does not (``benchmarks/question_coverage.py``). By hand for the example: p = 60/200 = 0.3;
    z_g = (y_g - p m_g) / 200 = (-0.075, -0.025, 0.025, 0.075); V = 4/3 * 0.0125 = 1/60;
    n_eff = 0.21 * 60 = 12.6, times (1.96 / t_3 = 3.1824)^2 = 4.779; x = 1.434; limits
    Beta(0.025; 1.434, 4.345) = 0.0204 and Beta(0.975; 2.434, 3.345) = 0.8000.

    Args:
        positives: Per question, responses counted positive (e.g. judge-misaligned), ``y_g``.
        totals: Per question, responses counted, ``m_g`` (> 0 for at least two questions).
        confidence: Two-sided coverage.
        method: ``"linearization"`` (CR1, Korn-Graubard limits with G - 1 df) or ``"bootstrap"``.
        n_boot: Resamples for the bootstrap.
        seed: Seed for the bootstrap.

    Returns:
        ``Estimate`` with ``estimand="questions"``.

    Example:
        >>> est = cluster_rate([0, 10, 20, 30], [50, 50, 50, 50])
        >>> round(est.rate, 3), round(est.low, 3), round(est.high, 3)
        (0.3, 0.02, 0.8)
    """
    y = np.asarray(positives, dtype=np.float64).ravel()
    m = np.asarray(totals, dtype=np.float64).ravel()
    if y.shape != m.shape:
        raise CalibrationInputError(
            f"give one count per question; got {len(y)} positives and {len(m)} totals"
        )
    return two_phase_cluster_rate(
        m[:, None], m[:, None], y[:, None], confidence, method=method, n_boot=n_boot, seed=seed
    )


def two_phase_cluster_rate(
    N_question_stratum: ArrayLike,
    n_question_stratum: ArrayLike,
    x_question_stratum: ArrayLike,
    confidence: float = 0.95,
    *,
    method: ClusterMethod = "linearization",
    n_boot: int = 2000,
    seed: int = 0,
) -> Estimate:
    """The two-phase corrected rate with questions as clusters (``questions`` estimand).

    Same point estimate as :func:`two_phase_rate`, ``p = sum_h (N_h / N) x_h / n_h`` with every total a
    sum over questions g. Linearisation: the influence of question g is
    ``z_g = sum_h [N_gh p_h / N + W_h (x_gh - p_h n_gh) / n_h] - p N_g / N`` (the derivative of p in each
    cluster total), ``V = G / (G - 1) sum_g z_g^2`` (CR1). Its label-sampling part, the Wald variance
    ``V2 = sum_h W_h^2 (1 - n_h/N_h) p_h (1 - p_h) / n_h``, is what the ``responses`` interval covers;
    the questions' part ``Vq = max(V - V2, sum_h W_h (p_h - p)^2 / N)`` (never below the
    independent-answers phase-1 term) gets the limits
    ``expit(logit p -+ t_{G-1} sqrt(Vq) / (p (1 - p)))``, and MOVER adds the two:
    ``L = p - sqrt((p - L_resp)^2 + (p - L_q)^2)``, likewise ``U``. For a raw rate (every response
    "labelled") ``V2 = 0`` and this is the logit-t sandwich. The bootstrap resamples questions with
    replacement and recomputes p (a stratum that a resample leaves unlabelled keeps its full-sample
    rate). When every question has the same influence (e.g. no positive anywhere) the variance is 0
    and the interval falls back to Clopper-Pearson on the labels with a ``"no_between_question_variance"``
    flag.

    Args:
        N_question_stratum: Judged responses per question (rows) and judge stratum (columns).
        n_question_stratum: Human-labelled responses per question and stratum.
        x_question_stratum: Human-misaligned labels among them (may be fractional: posterior labels).
        confidence: Two-sided coverage.
        method: ``"linearization"`` or ``"bootstrap"``.
        n_boot: Resamples for the bootstrap (>= 200).
        seed: Seed for the bootstrap.

    Returns:
        ``Estimate`` with ``estimand="questions"`` and ``method`` ``"two_phase_cluster_linearization_t"``
        or ``"two_phase_cluster_bootstrap"``.

    Raises:
        CalibrationInputError: shapes differ, fewer than two questions, or a stratum with judged
            responses has no labels.
    """
    check_confidence(confidence)
    N = np.atleast_2d(np.asarray(N_question_stratum, dtype=np.float64))
    n = np.atleast_2d(np.asarray(n_question_stratum, dtype=np.float64))
    x = np.atleast_2d(np.asarray(x_question_stratum, dtype=np.float64))
    if not (N.shape == n.shape == x.shape):
        raise CalibrationInputError(
            f"N, n and x need the same (questions x strata) shape; got {N.shape}, {n.shape}, {x.shape}"
        )
    if np.any(N < 0) or np.any(n < 0) or np.any(x < 0) or np.any(x > n + 1e-9):
        raise CalibrationInputError("counts must be >= 0 with x <= n per question and stratum")
    keep_q = N.sum(axis=1) > 0
    N, n, x = N[keep_q], n[keep_q], x[keep_q]
    G = len(N)
    if G < 2:
        raise CalibrationInputError(
            f"the questions estimand needs at least 2 questions with responses; got {G}"
        )
    keep_h = N.sum(axis=0) > 0
    N, n, x = N[:, keep_h], n[:, keep_h], x[:, keep_h]
    N_h, n_h, x_h = N.sum(axis=0), n.sum(axis=0), x.sum(axis=0)
    if np.any(n_h == 0):
        raise CalibrationInputError(
            "a judge stratum has responses but no human labels; label at least one response there"
        )
    total = N_h.sum()
    W, p_h = N_h / total, x_h / n_h
    rate = float(np.sum(W * p_h))
    suffix = "two_phase_cluster" if not np.allclose(N, n) else "cluster"
    flags: list[str] = []
    if method == "linearization":
        z_g = (N @ p_h) / total + ((x - n * p_h) @ (W / n_h)) - rate * N.sum(axis=1) / total
        var = G / (G - 1) * float(np.sum(z_g**2))
        if suffix == "cluster":  # a raw rate: every response counted, no label sampling
            if var <= 1e-18 or not 0.0 < rate < 1.0:
                return _no_variance(x_h, n_h, rate, confidence, suffix)
            low, high = _korn_graubard(rate, var, float(total), G, confidence)
            if G < 10:
                flags.append("few_questions")
            return Estimate(rate, low, high, "cluster_korn_graubard", confidence, tuple(flags), "questions")
        # The label-sampling part of var is what the responses interval already covers, and covers
        # better (MOVER-Wilson keeps its coverage with 1-3 positives in a stratum, where a Wald-type
        # sandwich does not). So split: the rest, var - Wald phase-2 variance, is the questions' share
        # (never less than the independent-answers phase-1 term), and MOVER combines the two parts.
        shrink = finite_population_factor(n_h, N_h)
        phase2 = float(np.sum(W**2 * shrink**2 * p_h * (1 - p_h) / n_h))
        independent = float(np.sum(W * (p_h - rate) ** 2) / total)
        between = max(var - phase2, independent)
        if between <= 1e-18 or not 0.0 < rate < 1.0:
            return _no_variance(x_h, n_h, rate, confidence, suffix)
        q = float(student_t.ppf(0.5 + confidence / 2, G - 1))
        sd_logit = np.sqrt(between) / (rate * (1 - rate))
        low_q = float(expit(logit(rate) - q * sd_logit))
        high_q = float(expit(logit(rate) + q * sd_logit))
        _, low_r, high_r = (float(v) for v in two_phase_arrays(W, x_h, n_h, confidence, fpc=shrink))
        low = rate - float(np.hypot(rate - low_r, rate - low_q))
        high = rate + float(np.hypot(high_r - rate, high_q - rate))
        if low < 0.0 or high > 1.0:
            flags.append("clipped")
        low, high = max(low, 0.0), min(high, 1.0)
        name = f"{suffix}_linearization_t"
    elif method == "bootstrap":
        if n_boot < 200:
            raise CalibrationInputError(f"n_boot must be >= 200 for a cluster bootstrap; got {n_boot}")
        rng = np.random.default_rng(seed)
        counts = rng.multinomial(G, np.full(G, 1.0 / G), size=n_boot).astype(np.float64)
        N_b, n_b, x_b = counts @ N, counts @ n, counts @ x
        with np.errstate(invalid="ignore", divide="ignore"):
            p_b = np.where(n_b > 0, x_b / np.maximum(n_b, 1e-300), p_h)
        boot = np.sum(N_b * p_b, axis=1) / N_b.sum(axis=1)
        if float(np.ptp(boot)) <= 1e-15:
            return _no_variance(x_h, n_h, rate, confidence, suffix)
        tail = (1 - confidence) / 2
        low, high = (float(v) for v in np.quantile(boot, [tail, 1 - tail]))
        low, high = min(low, rate), max(high, rate)
        name = f"{suffix}_bootstrap"
    else:
        raise CalibrationInputError(f"method must be one of {', '.join(CLUSTER_METHODS)}; got {method!r}")
    if G < 10:
        flags.append("few_questions")
    return Estimate(rate, low, high, name, confidence, tuple(flags), "questions")


def _korn_graubard(rate: float, var: float, total: float, G: int, confidence: float) -> tuple[float, float]:
    """Clopper-Pearson limits at the effective sample size, df-adjusted (Korn & Graubard 1998).

    ``n_eff = p (1 - p) / V`` (capped at the number of responses), times ``(z / t_{G-1})^2`` so the
    interval reflects G - 1 degrees of freedom; then the beta limits with ``x = p n_eff``. Unlike a
    symmetric interval its upper limit grows where skewed per-question rates put the truth above a
    low estimate (a low estimate comes with a low variance estimate).
    """
    alpha = 1 - confidence
    z = float(norm.ppf(1 - alpha / 2))
    q = float(student_t.ppf(1 - alpha / 2, G - 1))
    n_eff = min(rate * (1 - rate) / var, total) * (z / q) ** 2
    x = rate * n_eff
    low = float(beta.ppf(alpha / 2, x, n_eff - x + 1)) if x > 0 else 0.0
    high = float(beta.ppf(1 - alpha / 2, x + 1, n_eff - x)) if x < n_eff else 1.0
    return min(low, rate), max(high, rate)


def _no_variance(x_h: _Arr, n_h: _Arr, rate: float, confidence: float, suffix: str) -> Estimate:
    exact = clopper_pearson_ci(round(float(x_h.sum())), int(n_h.sum()), confidence)
    low, high = min(exact.low, rate), max(exact.high, rate)
    return Estimate(
        rate,
        low,
        high,
        f"{suffix}_clopper_pearson",
        confidence,
        ("no_between_question_variance",),
        "questions",
    )
