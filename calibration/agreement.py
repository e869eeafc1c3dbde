"""Agreement between raters: Krippendorff's alpha with a bootstrap interval, kappas, percent agreement.

Input shape throughout: a raters x units array (rows are raters, columns are units, ``NaN`` = the rater
did not rate that unit), the layout of the ``krippendorff`` package. Labels must be numeric codes.

On a judge-stratified sample these statistics describe *the sample*, whose prevalence is far from the
population's (judge-positive responses are over-sampled); chance-corrected coefficients depend on
prevalence, so they are sample values, not population values (see :data:`PREVALENCE_CAVEAT`).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any, Literal

import krippendorff as _kd
import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as _sm_fleiss_kappa

from emaudit.calibration._validate import check_confidence
from emaudit.calibration.errors import CalibrationInputError, UndefinedStatisticError

Level = Literal["nominal", "ordinal", "interval", "ratio"]
_Arr = NDArray[np.float64]

PREVALENCE_CAVEAT = (
    "Agreement was measured on a sample stratified by the judge's label, which over-represents "
    "judge-positive responses; chance-corrected coefficients (alpha, kappa) depend on prevalence, so "
    "these are values for this sample, not for the judged population."
)
_PACKAGE_MAX_VALUES = (
    128  # the package builds a units x values^2 coincidence array; past this use the closed form
)
_BOOT_CELLS_PER_CHUNK = 20_000_000


@dataclass(frozen=True)
class AgreementEstimate:
    """An agreement coefficient with an optional bootstrap interval.

    Attributes:
        statistic: e.g. ``"krippendorff_alpha_nominal"``.
        value: The coefficient on the full data.
        low: Lower percentile-bootstrap limit (None when no bootstrap was run).
        high: Upper limit (None when no bootstrap was run).
        method: How the interval was computed, e.g. ``"unit_bootstrap"``, or ``"none"``.
        confidence: Nominal coverage of ``[low, high]``.
        n_units: Units with at least two ratings (the only ones alpha uses).
        n_raters: Rows of the input.
        n_boot: Bootstrap resamples requested.
        n_boot_undefined: Resamples in which alpha was undefined (no variation) and were dropped.
    """

    statistic: str
    value: float
    low: float | None
    high: float | None
    method: str
    confidence: float
    n_units: int
    n_raters: int
    n_boot: int
    n_boot_undefined: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of the fields above."""
        return asdict(self)


def krippendorff_alpha(
    ratings: ArrayLike,
    level: Level = "nominal",
    *,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> AgreementEstimate:
    """Krippendorff's alpha (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability") with a
    unit-resampling percentile bootstrap interval.

    The point estimate comes from the ``krippendorff`` package. The bootstrap resamples units with
    replacement; for the nominal and interval levels alpha is a ratio of sums of per-unit terms
    (``alpha = 1 - (n - 1) sum_u D_u / D_e``), so all resamples are computed at once from those terms.
    Ordinal and ratio levels call the package once per resample.

    Args:
        ratings: Raters x units array of numeric codes (nominal), ranks (ordinal) or scores
            (interval/ratio, e.g. 0-100 alignment); ``NaN`` marks a missing rating.
        level: Level of measurement: ``"nominal"`` for labels, ``"interval"`` for 0-100 scores.
        confidence: Two-sided coverage of the interval.
        n_boot: Bootstrap resamples, 0 (no interval) or >= 2000.
        seed: Seed of the resampling (results are reproducible).

    Returns:
        :class:`AgreementEstimate`.

    Raises:
        CalibrationInputError: fewer than two raters, no unit rated twice, or a bad ``n_boot``/``level``.
        UndefinedStatisticError: every pairable rating has the same value, so alpha is 0/0; report
            percent agreement instead.

    Example:
        >>> round(krippendorff_alpha([[1, 2, 3, 3], [1, 2, 3, 4]], "interval", n_boot=0).value, 4)
        0.8889
    """
    check_confidence(confidence)
    if level not in ("nominal", "ordinal", "interval", "ratio"):
        raise CalibrationInputError(f"level must be nominal, ordinal, interval or ratio; got {level!r}")
    if n_boot != 0 and n_boot < 2000:
        raise CalibrationInputError(f"n_boot must be 0 (no interval) or at least 2000; got {n_boot}")
    data = _pairable_units(ratings)
    values = np.unique(data[~np.isnan(data)])
    if len(values) < 2:
        raise UndefinedStatisticError(
            f"every rating of every unit rated twice is {values[0]:g}: alpha is undefined "
            "(there is no variation "
            "to agree about); report percent agreement instead"
        )
    counts = _value_counts(data, values)
    if len(values) <= _PACKAGE_MAX_VALUES:
        # integer counts: the package's einsum is several times faster on them than on floats
        value = float(
            _kd.alpha(value_counts=counts.astype(np.int64), value_domain=values, level_of_measurement=level)
        )
    elif level in ("nominal", "interval"):
        totals, d = _unit_terms(data, counts, level)
        value = float(_alpha_from_terms(totals.sum(axis=0), d.sum(), level)[0])
    else:
        raise CalibrationInputError(
            f"{len(values)} distinct values is too many for the {level} level; round the scores first"
        )
    low = high = None
    undefined = 0
    method = "none"
    if n_boot:
        boot = _bootstrap(data, counts, values, level, n_boot, seed)
        undefined = int(np.isnan(boot).sum())
        boot = boot[~np.isnan(boot)]
        if boot.size < n_boot // 2:
            raise UndefinedStatisticError(
                f"alpha was undefined in {undefined} of {n_boot} resamples (almost no variation); "
                "the interval would be meaningless: label more varied units or report percent agreement"
            )
        tail = (1 - confidence) / 2
        low, high = (float(v) for v in np.quantile(boot, [tail, 1 - tail]))
        method = "unit_bootstrap"
    return AgreementEstimate(
        f"krippendorff_alpha_{level}",
        value,
        low,
        high,
        method,
        confidence,
        data.shape[1],
        data.shape[0],
        n_boot,
        undefined,
    )


def cohen_kappa(rater_a: ArrayLike, rater_b: ArrayLike) -> float:
    """Cohen's kappa (Cohen 1960) between two raters over the units both rated (scikit-learn).

    Args:
        rater_a: One rating per unit (``NaN`` = not rated).
        rater_b: Same length as ``rater_a``.

    Raises:
        CalibrationInputError: lengths differ or no unit was rated by both.
        UndefinedStatisticError: both raters used one and the same category for every shared unit.
    """
    a = np.asarray(rater_a, dtype=np.float64)
    b = np.asarray(rater_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise CalibrationInputError(
            f"give two 1-D arrays of equal length; got shapes {a.shape} and {b.shape}"
        )
    both = ~np.isnan(a) & ~np.isnan(b)
    if not both.any():
        raise CalibrationInputError(
            "the two raters share no rated unit; Cohen's kappa needs overlapping units"
        )
    a, b = a[both], b[both]
    if len(np.unique(np.concatenate([a, b]))) < 2:
        raise UndefinedStatisticError(
            "both raters used a single, identical category: kappa is 0/0 (undefined)"
        )
    return float(cohen_kappa_score(a, b))


def mean_pairwise_cohen_kappa(ratings: ArrayLike, *, min_overlap: int = 10) -> tuple[float, int]:
    """Mean Cohen's kappa over rater pairs that share at least ``min_overlap`` units (Light 1971).

    Returns:
        ``(mean kappa, number of pairs used)``.

    Raises:
        UndefinedStatisticError: no pair of raters shares ``min_overlap`` units with some variation.
    """
    data = _as_matrix(ratings)
    present = ~np.isnan(data)
    overlap = present.astype(np.int64) @ present.T.astype(np.int64)
    kappas = []
    for i, j in itertools.combinations(range(data.shape[0]), 2):
        if overlap[i, j] < min_overlap:
            continue
        try:
            kappas.append(cohen_kappa(data[i], data[j]))
        except UndefinedStatisticError:
            continue
    if not kappas:
        raise UndefinedStatisticError(
            f"no pair of raters shares {min_overlap} or more units with any variation; lower min_overlap "
            "or assign overlapping items"
        )
    return float(np.mean(kappas)), len(kappas)


def fleiss_kappa(ratings: ArrayLike) -> tuple[float, int]:
    """Fleiss' kappa (Fleiss 1971; statsmodels) over the units with the most common number of ratings.

    Fleiss' kappa needs the same number of ratings per unit, so units with another count are left out.

    Returns:
        ``(kappa, number of units used)``.

    Raises:
        CalibrationInputError: no unit has two or more ratings.
        UndefinedStatisticError: a single category was used throughout.
    """
    data = _pairable_units(ratings)
    m = (~np.isnan(data)).sum(axis=0)
    common = int(np.bincount(m).argmax())
    used = data[:, m == common]
    values = np.unique(used[~np.isnan(used)])
    if len(values) < 2:
        raise UndefinedStatisticError("every rating is the same category: Fleiss' kappa is 0/0 (undefined)")
    rows = [col[~np.isnan(col)] for col in used.T]
    table, _ = aggregate_raters(np.vstack(rows), n_cat=None)
    return float(_sm_fleiss_kappa(table, method="fleiss")), used.shape[1]


def percent_agreement(ratings: ArrayLike) -> float:
    """Share of agreeing rater pairs, averaged over units rated at least twice (no chance correction)."""
    data = _pairable_units(ratings)
    values = np.unique(data[~np.isnan(data)])
    counts = _value_counts(data, values)
    m = counts.sum(axis=1)
    return float(np.mean((counts * (counts - 1)).sum(axis=1) / (m * (m - 1))))


def _as_matrix(ratings: ArrayLike) -> _Arr:
    try:
        data = np.array(ratings, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CalibrationInputError(
            "ratings must be numeric (encode labels as integer codes) with NaN for missing"
        ) from exc
    if data.ndim != 2:
        raise CalibrationInputError(
            f"ratings must be a raters x units 2-D array; got {data.ndim} dimension(s)"
        )
    if data.shape[0] < 2:
        raise CalibrationInputError(
            "agreement needs at least two raters (rows); a single rater has nothing to agree with"
        )
    return data


def _pairable_units(ratings: ArrayLike) -> _Arr:
    data = _as_matrix(ratings)
    pairable = (~np.isnan(data)).sum(axis=0) >= 2
    if not pairable.any():
        raise CalibrationInputError(
            "no unit has ratings from two or more raters; assign some items to more than one rater"
        )
    return data[:, pairable]


def _value_counts(data: _Arr, values: _Arr) -> _Arr:
    # units x values; NaN never matches, so missing ratings drop out
    idx = np.searchsorted(values, data)
    counts = np.zeros((data.shape[1], len(values)))
    present = ~np.isnan(data)
    units = np.broadcast_to(np.arange(data.shape[1]), data.shape)
    np.add.at(counts, (units[present], idx[present]), 1.0)
    return counts


def _unit_terms(data: _Arr, counts: _Arr, level: str) -> tuple[_Arr, _Arr]:
    """Per-unit sufficient statistics: (U x k matrix of additive totals, U-vector of within-unit D_u)."""
    m = (~np.isnan(data)).sum(axis=0).astype(np.float64)
    if level == "nominal":
        d = (m * m - (counts * counts).sum(axis=1)) / (m - 1)
        return np.column_stack([counts, m]), d
    centred = data - np.nanmean(data)  # centring keeps sums of squares accurate
    s1 = np.nansum(centred, axis=0)
    s2 = np.nansum(centred * centred, axis=0)
    d = (s2 - s1 * s1 / m) * m / (m - 1)
    return np.column_stack([s1, s2, m]), d


def _alpha_from_terms(totals: _Arr, d: _Arr, level: str) -> _Arr:
    """alpha from (resampled) column totals; works on one row of totals or a batch of rows."""
    t = np.atleast_2d(totals)
    d_total = np.atleast_1d(d)
    n = t[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        if level == "nominal":
            expected = n * n - (t[:, :-1] ** 2).sum(axis=1)  # sum_{c != k} n_c n_k
        else:
            expected = n * (t[:, 1] - t[:, 0] ** 2 / n)  # n * SS: sum_{c,k} n_c n_k (c-k)^2 / 2
        alpha = 1 - (n - 1) * d_total / expected
    alpha[expected <= 1e-12 * np.maximum(n, 1) ** 2] = np.nan
    return alpha


def _bootstrap(data: _Arr, counts: _Arr, values: _Arr, level: Level, n_boot: int, seed: int) -> _Arr:
    rng = np.random.default_rng(seed)
    n_units = data.shape[1]
    if level in ("nominal", "interval"):
        totals, d = _unit_terms(data, counts, level)
        out = np.empty(n_boot)
        chunk = max(1, _BOOT_CELLS_PER_CHUNK // n_units)
        for start in range(0, n_boot, chunk):
            rows = min(chunk, n_boot - start)
            draws = rng.integers(0, n_units, size=(rows, n_units))
            flat = draws + (np.arange(rows) * n_units)[:, None]
            weights = (
                np.bincount(flat.ravel(), minlength=rows * n_units).reshape(rows, n_units).astype(np.float64)
            )
            out[start : start + rows] = _alpha_from_terms(weights @ totals, weights @ d, level)
        return out
    out = np.empty(n_boot)
    for b in range(n_boot):
        resampled = counts[rng.integers(0, n_units, size=n_units)]
        keep = resampled.sum(axis=0) > 0
        if keep.sum() < 2:
            out[b] = np.nan
            continue
        out[b] = _kd.alpha(
            value_counts=resampled[:, keep].astype(np.int64),
            value_domain=values[keep],
            level_of_measurement=level,
        )
    return out
