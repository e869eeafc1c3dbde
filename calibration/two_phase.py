"""The double-sampling (two-phase) estimator of a rate when humans label a judge-stratified sample.

Phase 1 is the judge's label on all N responses, which splits them into strata (judge says misaligned,
aligned, incoherent, no score; optionally crossed with the cell). Phase 2 is a simple random sample of
``n_j`` responses from each stratum, labelled by humans. The estimator is the stratified mean
``p = sum_j w_j x_j / n_j`` with ``w_j = N_j / N`` (Neyman 1934; Cochran, *Sampling Techniques*, 3rd ed.,
§12 "Double sampling for stratification"). It is unbiased under any allocation of the ``n_j``
(equal, proportional, Neyman), because the allocation only enters through the inclusion probability
``n_j / N_j``, which the weights undo.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from emaudit.calibration._validate import check_confidence, count_array, same_length
from emaudit.calibration.binomial import jeffreys_bounds, wilson_bounds
from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.estimate import Estimate

Interval = Literal["mover_wilson", "mover_jeffreys", "mover_wilson_plain", "wald"]
INTERVALS: tuple[str, ...] = ("mover_wilson", "mover_jeffreys", "mover_wilson_plain", "wald")
_Arr = NDArray[np.float64]


def two_phase_rate(
    N_per_stratum: Sequence[int] | ArrayLike,
    n_labelled: Sequence[int] | ArrayLike,
    n_positive: Sequence[int] | ArrayLike,
    confidence: float = 0.95,
    *,
    interval: Interval = "mover_wilson",
    phase1: bool = False,
    fpc: bool = True,
    expected_counts: bool = False,
) -> Estimate:
    """Rate of human-positive responses from a judge-stratified human sample (double sampling).

    ``p = sum_j w_j p_j`` with ``w_j = N_j / N`` and ``p_j = x_j / n_j`` (Cochran, *Sampling Techniques*,
    §12; Neyman 1934). The default interval is MOVER-Wilson (Zou & Donner 2008, "Construction of
    confidence limits about effect measures: a general approach", Stat. Med. 27:1693): each ``p_j`` gets
    a Wilson interval ``[l_j, u_j]`` and the limits are recovered as
    ``L = p - sqrt(sum w_j^2 (p_j - l_j)^2)``, ``U = p + sqrt(sum w_j^2 (u_j - p_j)^2)``. Unlike the Wald
    interval it stays inside [0, 1] and keeps its coverage when a stratum has 0 or all positives. The
    per-stratum limits are the *modified* Wilson limits of Brown, Cai & DasGupta (2001), which differ from
    plain Wilson only when a stratum has 1-3 positives (or non-positives): plain Wilson under-covers
    there, and with 20 labels per stratum at 1% prevalence MOVER with plain Wilson covers only ~91%
    (``benchmarks/coverage_grid.py``). ``interval="mover_wilson_plain"`` gives the unmodified version.
    ``interval="mover_jeffreys"`` uses the modified Jeffreys limits of Brown, Cai & DasGupta (2001,
    §4.1.2; :func:`emaudit.calibration.binomial.jeffreys_bounds`) per stratum: not pulled towards 1/2,
    so shorter in the rare-positive stratum (fewer labels for the same half-width).

    By default the target is the rate among *these N responses* (phase 1 is treated as fixed), and the
    sample is drawn without replacement from each stratum, so each stratum's distances to its limits are
    scaled by the finite-population correction ``sqrt(1 - n_j / N_j)`` (Cochran §5.3, eq. 5.7 for the
    stratified variance ``sum w_j^2 (1 - f_j) S_j^2 / n_j``): a census stratum contributes no sampling
    variance, and a census of the whole cell gives the exact rate with width 0. Set
    ``phase1=True`` for a claim about the model that produced them (a superpopulation): this adds the
    phase-1 variance ``sum_j w_j (p_j - p)^2 / N`` (Cochran §12.2), to both MOVER limits as a normal
    component, or to the Wald variance. The phase-2 part then takes no finite-population correction:
    in Cochran's double-sampling variance ``S^2/N + sum w_j S_j^2 (1/nu_j - 1) / N`` the ``-w_j S_j^2/N``
    terms of the correction cancel against the within-stratum part of ``S^2/N``.

    Args:
        N_per_stratum: Judged responses in each stratum (``N_j``). Strata with ``N_j = 0`` are ignored.
        n_labelled: Human-labelled responses drawn at random from each stratum (``n_j <= N_j``).
        n_positive: Of those, how many humans call misaligned (``x_j <= n_j``).
        confidence: Two-sided coverage of the interval.
        interval: ``"mover_wilson"`` (default), ``"mover_jeffreys"`` (modified Jeffreys limits),
            ``"mover_wilson_plain"`` (unmodified Wilson limits) or ``"wald"`` (normal approximation;
            for comparison only).
        phase1: Add the phase-1 term (inference about the model rather than these N responses).
        fpc: Apply the finite-population correction (ignored with ``phase1``). ``False`` gives the
            with-replacement interval of earlier releases (what the published reference values use).
        expected_counts: ``n_positive`` may be fractional: expected counts, i.e. sums of posterior
            probabilities from a rater model (:mod:`emaudit.calibration.rater_model`). The interval is
            then the design part only; :func:`emaudit.calibration.imputation.widen_for_imputation` adds
            the label uncertainty.

    Returns:
        ``Estimate`` whose ``method`` names the estimator and interval, e.g. ``"two_phase_mover_wilson_fpc"``
        (``_fpc``: finite-population corrected; ``_phase1``: phase-1 term added).

    Raises:
        CalibrationInputError: lengths differ, counts are out of range, or a non-empty stratum has no
            human labels (label at least one response there, or merge it with a neighbouring stratum).

    Example:
        >>> est = two_phase_rate([200, 800], [50, 100], [40, 10])
        >>> round(est.rate, 6), round(est.low, 6), round(est.high, 6)
        (0.24, 0.199597, 0.29768)
        >>> census = two_phase_rate([10, 40], [10, 40], [8, 1])
        >>> round(census.rate, 12), census.width, census.flags
        (0.18, 0.0, ('census',))
    """
    z = check_confidence(confidence)
    N, n, x = _validated(N_per_stratum, n_labelled, n_positive, expected_counts=expected_counts)
    keep = N > 0
    N, n, x = N[keep], n[keep], np.minimum(x[keep], n[keep])
    w = N / N.sum()
    use_fpc = fpc and not phase1
    shrink = finite_population_factor(n, N) if use_fpc else None
    rate, low, high = two_phase_arrays(w, x, n, confidence, interval=interval, fpc=shrink)
    rate_f, low_f, high_f = float(rate), float(low), float(high)
    method = f"two_phase_{interval}" + ("_fpc" if use_fpc else "")
    flags: list[str] = []
    if phase1:
        p = x / n
        v1 = float(np.sum(w * (p - rate_f) ** 2) / N.sum())
        low_f = rate_f - float(np.sqrt((rate_f - low_f) ** 2 + z * z * v1))
        high_f = rate_f + float(np.sqrt((high_f - rate_f) ** 2 + z * z * v1))
        method += "_phase1"
    if low_f < -1e-12 or high_f > 1.0 + 1e-12:
        flags.append("clipped")
    low_f, high_f = max(low_f, 0.0), min(high_f, 1.0)  # also absorbs rounding at a 0/1 boundary
    if np.all(n == N):
        flags.append("census")  # every response labelled: with the correction the rate is exact
    return Estimate(rate_f, low_f, high_f, method, confidence, tuple(flags))


def finite_population_factor(n_labelled: _Arr, N_per_stratum: _Arr) -> _Arr:
    """``sqrt(1 - n_j / N_j)`` per stratum: how much of a with-replacement half-width remains (0 = census)."""
    n = np.asarray(n_labelled, dtype=np.float64)
    N = np.asarray(N_per_stratum, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(np.clip(1.0 - np.where(N > 0, n / np.maximum(N, 1.0), 1.0), 0.0, 1.0))


def two_phase_arrays(
    weights: _Arr,
    n_positive: _Arr,
    n_labelled: _Arr,
    confidence: float = 0.95,
    *,
    interval: Interval = "mover_wilson",
    fpc: _Arr | None = None,
) -> tuple[_Arr, _Arr, _Arr]:
    """Vectorised two-phase estimate and interval over a trailing strata axis.

    ``weights`` has shape ``(S,)``; ``n_positive`` and ``n_labelled`` broadcast to ``(..., S)`` (for example
    replications x strata in the Monte Carlo). ``fpc`` (broadcasting likewise) multiplies each stratum's
    distance to its limits: :func:`finite_population_factor`, or None for none. No validation:
    :func:`two_phase_rate` is the checked entry.
    """
    w = np.asarray(weights, dtype=np.float64)
    x = np.asarray(n_positive, dtype=np.float64)
    n = np.asarray(n_labelled, dtype=np.float64)
    g = 1.0 if fpc is None else np.asarray(fpc, dtype=np.float64)
    p = x / n
    rate = np.sum(w * p, axis=-1)
    if interval == "wald":
        z = check_confidence(confidence)
        se = np.sqrt(np.sum(w * w * g * g * p * (1 - p) / n, axis=-1))
        return rate, rate - z * se, rate + z * se
    if interval not in INTERVALS:
        raise CalibrationInputError(f"interval must be one of {', '.join(INTERVALS)}; got {interval!r}")
    if interval == "mover_jeffreys":
        low_j, high_j = jeffreys_bounds(x, n, confidence)
    else:
        low_j, high_j = wilson_bounds(x, n, confidence, modified=interval == "mover_wilson")
    low = rate - np.sqrt(np.sum(w * w * (g * (p - low_j)) ** 2, axis=-1))
    high = rate + np.sqrt(np.sum(w * w * (g * (high_j - p)) ** 2, axis=-1))
    return rate, low, high


def _validated(
    N_per_stratum: ArrayLike, n_labelled: ArrayLike, n_positive: ArrayLike, *, expected_counts: bool = False
) -> tuple[_Arr, _Arr, _Arr]:
    N = count_array("N_per_stratum", N_per_stratum)
    n = count_array("n_labelled", n_labelled)
    x = count_array("n_positive", n_positive, whole=not expected_counts)
    same_length(N_per_stratum=N, n_labelled=n, n_positive=x)
    if N.sum() == 0:
        raise CalibrationInputError(
            "no judged responses in any stratum (empty cell); drop the cell or judge it first"
        )
    for j in range(len(N)):
        if N[j] > 0 and n[j] == 0:
            raise CalibrationInputError(
                f"stratum {j} has {int(N[j])} judged responses but no human labels; "
                "label at least one of them "
                "(two or more per stratum is advisable) or merge the stratum with a neighbouring one"
            )
        if n[j] > N[j]:
            raise CalibrationInputError(
                f"stratum {j}: n_labelled={int(n[j])} exceeds N_per_stratum={int(N[j])}; "
                "the sample is drawn from the stratum, so n_j <= N_j"
            )
        if x[j] > n[j] + 1e-9:
            raise CalibrationInputError(f"stratum {j}: n_positive={x[j]:g} exceeds n_labelled={int(n[j])}")
    return N, n, x
