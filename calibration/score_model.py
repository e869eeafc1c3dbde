"""A generative model of the judge's alignment score given the truth, for score-band designs (issue 10).

The binary judge label (alignment < 30) is drawn as in :func:`emaudit.calibration.coverage.design_strata`
(prevalence, FNR, FPR). Judge-positive answers form the ``misaligned`` band. The judge-negative answers get
a 0-100 score whose distribution depends on the truth:

* human-negative (clean) answers follow an empirical score distribution of judge-negative answers from
  the reference data (GPT-4o judge, 25 files of ``replicating-model-organisms``; tables below);
* human-positive answers the judge missed score ``30 + E`` with ``E ~ Exponential(miss_scale)``
  truncated at 70 (they concentrate just above the threshold, with spread ``miss_scale``).

Two reference distributions are provided. ``"low_em"`` pools the judge-negative coherent answers of the 5
files with the lowest judge-positive rates (1.6-3.3%; 1,886 answers): 5.1% of them score 30-50. ``"all"``
pools all 25 files (8,369 answers): 16.0% score 30-50, inflated by borderline answers of the EM models.
Across the 25 files the share of judge-negatives scoring 30-50 rises with the file's judge-positive rate
(slope 1.18, intercept 0.013, correlation 0.88), which is why near-threshold answers are worth their own
stratum; how many of them *humans* call misaligned is not in the reference data (no human labels), so
``miss_scale`` is an assumption, stated per scenario. Everything here is plain arrays (DESIGN §5).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from emaudit.calibration.coverage import CoverageResult, design_strata
from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.two_phase import Interval, finite_population_factor, two_phase_arrays

_Arr = NDArray[np.float64]
CleanScores = Literal["low_em", "all"]

_GRID = np.arange(30.0, 101.0, 5.0)
# P(score < g | judge-negative, coherent) at g = 30, 35, ..., 100 (computed from the reference CSVs:
# aligned >= 30 and coherent > 50; benchmarks/label_efficiency.py --check-reference recomputes them).
REFERENCE_CLEAN_CDF: dict[str, tuple[float, ...]] = {
    "low_em": (
        0.0, 0.017, 0.0313, 0.0414, 0.0509, 0.0652, 0.0806, 0.1071,
        0.1357, 0.1898, 0.2587, 0.4692, 0.71, 0.8722, 1.0,
    ),
    "all": (
        0.0, 0.0595, 0.1072, 0.1367, 0.16, 0.1858, 0.2208, 0.2641,
        0.3207, 0.3871, 0.4547, 0.6229, 0.7982, 0.9186, 1.0,
    ),
}  # fmt: skip


def clean_cdf(score: float | _Arr, clean: CleanScores = "low_em") -> _Arr:
    """P(score < s) for a clean judge-negative answer (linear between the 5-point reference grid)."""
    if clean not in REFERENCE_CLEAN_CDF:
        raise CalibrationInputError(f"clean must be one of {', '.join(REFERENCE_CLEAN_CDF)}; got {clean!r}")
    return np.interp(score, _GRID, np.array(REFERENCE_CLEAN_CDF[clean]))


def missed_cdf(score: float | _Arr, miss_scale: float) -> _Arr:
    """P(score < s) for a human-positive answer the judge missed: ``30 + Exp(miss_scale)``, cut at 100."""
    if miss_scale <= 0:
        raise CalibrationInputError(f"miss_scale must be positive (points above 30); got {miss_scale:g}")
    s = np.clip(np.asarray(score, dtype=np.float64), 30.0, 100.0)
    return (1 - np.exp(-(s - 30.0) / miss_scale)) / (1 - np.exp(-70.0 / miss_scale))


def band_design(
    prevalence: float,
    fnr: float,
    fpr: float,
    *,
    edges: Sequence[float] = (60.0,),
    miss_scale: float = 10.0,
    clean: CleanScores = "low_em",
) -> tuple[_Arr, _Arr]:
    """Band weights ``W_b`` and human-positive rates ``p_b``: ``misaligned``, the near bands, clean.

    Example (prevalence 5%, FNR 50%, FPR 0.5%, edge 50, miss_scale 10, low_em): the judge-positive
    weight is 0.05 x 0.5 + 0.95 x 0.005 = 0.02975; missed positives 0.025, of which
    (1 - e^-2) / (1 - e^-7) = 0.86526 score 30-50; clean judge-negatives 0.95 x 0.995 = 0.94525, of
    which 0.0509 score 30-50. So W_near = 0.021632 + 0.048113 = 0.069745, p_near = 0.021632 / 0.069745
    = 0.3102, W_clean = 1 - 0.02975 - 0.069745 = 0.900505.

        >>> w, p = band_design(0.05, 0.5, 0.005, edges=(50.0,))
        >>> [round(float(v), 5) for v in w], [round(float(v), 4) for v in p]
        ([0.02975, 0.06975, 0.9005], [0.8403, 0.3102, 0.0037])
    """
    w2, p2 = design_strata(prevalence, fnr, fpr)
    bounds = np.array([30.0, *[float(e) for e in edges], 100.0 + 1e-9])
    missed = prevalence * fnr
    cleanw = (1 - prevalence) * (1 - fpr)
    pos = missed * np.diff(missed_cdf(bounds, miss_scale))
    neg = cleanw * np.diff(clean_cdf(bounds, clean))
    w = np.concatenate([[w2[0]], pos + neg])
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.concatenate([[p2[0]], np.where(pos + neg > 0, pos / (pos + neg), 0.0)])
    return w, p


def large_sample_bands(
    weights: _Arr,
    rates: _Arr,
    binary_weights: _Arr,
    binary_rates: _Arr,
    halfwidth: float,
    z: float = 1.959964,
) -> dict[str, float]:
    """Large-sample labels for ``halfwidth`` (no small-sample penalty; Cochran 1977, eq. 5.26).

    ``neyman_bands = z^2 (sum_b W_b S_b)^2 / d^2`` (score-band strata, Neyman); ``ppi_bands =
    z^2 sum_b W_b S_b^2 / d^2``, PPI++ on a simple random sample with the band's human rate as its
    prediction (Angelopoulos et al. 2023: with a calibrated predictor and lambda = 1 the variance is the
    mean within-band variance, i.e. post-stratification by band); ``ppi_binary`` the same with the binary
    judge label. ``ratio`` = ``neyman_bands / ppi_binary`` is the bound the acceptance ratio is read against.
    """
    s = np.sqrt(rates * (1 - rates))
    sb = np.sqrt(binary_rates * (1 - binary_rates))
    k = z * z / halfwidth**2
    out = {
        "neyman_bands": k * float(weights @ s) ** 2,
        "ppi_bands": k * float(weights @ s**2),
        "neyman_binary": k * float(binary_weights @ sb) ** 2,
        "ppi_binary": k * float(binary_weights @ sb**2),
    }
    out = {key: round(v, 1) for key, v in out.items()}
    out["ratio"] = round(out["neyman_bands"] / out["ppi_binary"], 3)
    out["ratio_to_ppi_bands"] = round(out["neyman_bands"] / out["ppi_bands"], 3)
    return out


def score_band_coverage(
    prevalence: float,
    fnr: float,
    fpr: float,
    total: int,
    *,
    N: int = 2000,
    reps: int = 2000,
    seed: int = 0,
    edges: Sequence[float] = (60.0,),
    miss_scale: float = 10.0,
    clean: CleanScores = "low_em",
    min_per_stratum: int = 2,
    confidence: float = 0.95,
    interval: Interval = "mover_wilson",
) -> CoverageResult:
    """Seeded coverage of the score-band design: bands, half-width allocation, two-phase interval.

    Per replication the N responses fall into (band, truth) cells by a multinomial draw from
    :func:`band_design`; the allocation is :func:`emaudit.calibration.halfwidth.
    halfwidth_allocation` of ``total`` labels with the design values (as the grid's Neyman cells use
    them), capped at each band's size; labels are drawn without replacement (hypergeometric) and the
    finite-population-corrected interval of :func:`emaudit.calibration.two_phase.two_phase_rate` is
    computed. Coverage is of the human-label rate among the N responses.
    """
    from emaudit.calibration.halfwidth import halfwidth_allocation

    rng = np.random.default_rng(seed)
    w, p = band_design(prevalence, fnr, fpr, edges=edges, miss_scale=miss_scale, clean=clean)
    fixed = halfwidth_allocation(
        np.round(w * N),
        p,
        total=total,
        min_per_stratum=min_per_stratum,
        confidence=confidence,
        interval=interval,
    ).n
    probs = np.column_stack([w * p, w * (1 - p)]).ravel()
    counts = rng.multinomial(N, probs / probs.sum(), size=reps).reshape(reps, len(w), 2)
    sizes, pos = counts.sum(axis=2), counts[:, :, 0]
    n = np.minimum(np.broadcast_to(fixed, sizes.shape), sizes)
    x = np.zeros_like(n)
    has = n > 0
    x[has] = rng.hypergeometric(pos[has], (sizes - pos)[has], n[has])
    n_safe = np.where(sizes > 0, np.maximum(n, 1), 1)  # an empty band has weight 0: a dummy label
    _, low, high = two_phase_arrays(
        sizes / N, x, n_safe, confidence, interval=interval, fpc=finite_population_factor(n, sizes)
    )
    truth = pos.sum(axis=1) / N
    covered = (low <= truth + 1e-12) & (truth <= high + 1e-12)
    coverage = float(covered.mean())
    return CoverageResult(
        coverage=coverage,
        mean_width=float(np.mean(high - low)),
        mean_labels=float(n.sum(axis=1).mean()),
        reps=reps,
        mc_se=float(np.sqrt(coverage * (1 - coverage) / reps)),
        scenario={
            "prevalence": prevalence,
            "fnr": fnr,
            "fpr": fpr,
            "total": total,
            "allocation": "halfwidth",
            "allocation_labels": fixed.tolist(),
            "edges": list(edges),
            "miss_scale": miss_scale,
            "clean": clean,
            "N": N,
            "seed": seed,
            "confidence": confidence,
            "interval": interval,
        },
    )
