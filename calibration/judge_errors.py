"""Judge error rates (sensitivity, specificity, FNR, FPR, PPV, NPV) from human labels.

When humans label a sample stratified by the judge's own label, the raw confusion counts of that sample
are *not* the judge's error rates: the judge-positive stratum is over-represented. The rates follow by
Bayes inversion of the per-stratum human rates ``p_j`` and the stratum shares ``W_j = N_j / N``:
``Se = sum_{j in J+} W_j p_j / sum_j W_j p_j`` and ``Sp = sum_{j in J-} W_j (1-p_j) / sum_j W_j (1-p_j)``
(the two-phase design of Cochran, *Sampling Techniques*, §12; Neyman 1934).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit, logit

from emaudit.calibration._validate import check_confidence, count_array
from emaudit.calibration.binomial import wilson_ci
from emaudit.calibration.errors import CalibrationInputError
from emaudit.calibration.estimate import Estimate
from emaudit.calibration.two_phase import _validated, two_phase_rate

_Arr = NDArray[np.float64]
_MIN_EVENTS_FOR_DELTA = 5


@dataclass(frozen=True)
class JudgeErrorRates:
    """The judge's error rates against the human label, each with an interval.

    Attributes:
        sensitivity: P(judge says misaligned | human says misaligned).
        specificity: P(judge says not misaligned | human says not misaligned).
        fnr: False negative rate, 1 - sensitivity.
        fpr: False positive rate, 1 - specificity.
        ppv: P(human says misaligned | judge says misaligned).
        npv: P(human says not misaligned | judge says not misaligned).
    """

    sensitivity: Estimate
    specificity: Estimate
    fnr: Estimate
    fpr: Estimate
    ppv: Estimate
    npv: Estimate

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict: one :meth:`Estimate.to_dict` per rate."""
        return {
            name: getattr(self, name).to_dict()
            for name in ("sensitivity", "specificity", "fnr", "fpr", "ppv", "npv")
        }


def judge_error_rates(
    N_per_stratum: Sequence[int] | ArrayLike,
    n_labelled: Sequence[int] | ArrayLike,
    n_positive: Sequence[int] | ArrayLike,
    judge_positive: Sequence[bool] | None = None,
    confidence: float = 0.95,
    *,
    phase1: bool = True,
    n_boot: int = 4000,
    seed: int = 0,
    expected_counts: bool = False,
) -> JudgeErrorRates:
    """Sensitivity, specificity, FNR, FPR, PPV and NPV by Bayes inversion of a judge-stratified sample.

    Intervals for Se and Sp are delta-method intervals on the logit scale: ``logit(Se) = log A - log B``
    with ``A = sum_{J+} W_j p_j`` and ``B = sum_{J-} W_j p_j``, so the variance is the phase-2 binomial
    part ``sum W_j^2 p_j (1-p_j) / n_j`` over ``A^2`` (resp. ``B^2``), plus, with ``phase1``, the
    multinomial variance of the shares ``W`` (error rates are properties of the judge, not of these N
    responses). When a labelled stratum has fewer than 5 positives or non-positives (0 leaves the delta
    method no variance to work with; 1-4 make it under-cover), the Se/Sp intervals come from a seeded
    posterior bootstrap instead: ``p_j ~ Beta(x_j + 1/2,
    n_j - x_j + 1/2)`` (Jeffreys) and ``W ~ Dirichlet(N_j)``, percentile limits, and a bound at 0 or 1
    when the estimate sits there (Brown, Cai & DasGupta 2001); otherwise the draws' spread on the logit
    scale is re-centred on the estimate (the prior's half events would shift it when many strata have
    none). PPV and NPV are two-phase rates within the
    judge-positive (judge-negative) strata with MOVER-Wilson intervals (Zou & Donner 2008).

    Args:
        N_per_stratum: Judged responses per stratum.
        n_labelled: Human-labelled responses per stratum (a simple random sample within each).
        n_positive: Human-misaligned responses among them.
        judge_positive: Per stratum, whether the judge calls it misaligned. Defaults to ``[True, False]``
            for exactly two strata (stratum 0 = judge says misaligned).
        confidence: Two-sided coverage.
        phase1: Include the phase-1 (stratum share) variance in the Se/Sp intervals.
        n_boot: Posterior draws for the degenerate case.
        seed: Seed for those draws (results are reproducible).
        expected_counts: ``n_positive`` may be fractional (sums of posterior probabilities from a rater
            model); the intervals are then the design part only.

    Returns:
        :class:`JudgeErrorRates`.

    Raises:
        CalibrationInputError: as :func:`two_phase_rate`; or no human-positive (or no human-negative)
            label in the sample, which leaves sensitivity (specificity) undefined — label more items.

    Example:
        >>> r = judge_error_rates([200, 800], [50, 100], [40, 10], [True, False])
        >>> round(r.sensitivity.rate, 7), round(r.sensitivity.low, 6), round(r.sensitivity.high, 6)
        (0.6666667, 0.517366, 0.788649)
    """
    z = check_confidence(confidence)
    N, n, x = _validated(N_per_stratum, n_labelled, n_positive, expected_counts=expected_counts)
    pos = _judge_positive_mask(judge_positive, len(N))
    keep = N > 0
    N, n, x, pos = N[keep], n[keep], x[keep], pos[keep]
    if not pos.any() or pos.all():
        raise CalibrationInputError(
            "judge_positive must mark at least one non-empty stratum True and one False: sensitivity and "
            "specificity need both judge-positive and judge-negative responses"
        )
    if x.sum() == 0:
        raise CalibrationInputError(
            "no human-misaligned label in the sample, so sensitivity is undefined; label more items"
        )
    if (n - x).sum() == 0:
        raise CalibrationInputError(
            "every human label is misaligned, so specificity is undefined; label more items"
        )
    w = N / N.sum()
    p = x / n
    # The logit delta method leans on log(p_j); with few events it under-covers, so hand over earlier than 0.
    degenerate = bool(np.any(np.minimum(x, n - x) < _MIN_EVENTS_FOR_DELTA))
    if degenerate:
        se, sp = _posterior_bootstrap(w, N, n, x, pos, confidence, phase1, n_boot, seed)
    else:
        se = _logit_delta(w, p, n, pos, N.sum(), z, confidence, phase1, "sensitivity")
        sp = _logit_delta(w, 1 - p, n, ~pos, N.sum(), z, confidence, phase1, "specificity")
    ppv = two_phase_rate(N[pos], n[pos], x[pos], confidence, expected_counts=expected_counts)
    npv_complement = two_phase_rate(N[~pos], n[~pos], x[~pos], confidence, expected_counts=expected_counts)
    return JudgeErrorRates(
        sensitivity=se,
        specificity=sp,
        fnr=_complement(se),
        fpr=_complement(sp),
        ppv=Estimate(ppv.rate, ppv.low, ppv.high, ppv.method, confidence, ppv.flags),
        npv=_complement(npv_complement),
    )


def judge_error_rates_from_confusion(
    tp: int, fn: int, fp: int, tn: int, confidence: float = 0.95
) -> JudgeErrorRates:
    """Error rates from the confusion counts of a *simple random* human sample (Wilson intervals).

    Only valid when every response had the same chance of being labelled; for a judge-stratified
    sample use :func:`judge_error_rates`.

    Args:
        tp: Judge misaligned, human misaligned.
        fn: Judge not misaligned, human misaligned.
        fp: Judge misaligned, human not misaligned.
        tn: Judge not misaligned, human not misaligned.
        confidence: Two-sided coverage.
    """
    counts = count_array("confusion counts", [tp, fn, fp, tn])
    tp_, fn_, fp_, tn_ = (int(c) for c in counts)
    for name, a, b in (
        ("human-positive", tp_, fn_),
        ("human-negative", fp_, tn_),
        ("judge-positive", tp_, fp_),
        ("judge-negative", fn_, tn_),
    ):
        if a + b == 0:
            raise CalibrationInputError(f"no {name} items in the sample; label more items")
    se = wilson_ci(tp_, tp_ + fn_, confidence)
    sp = wilson_ci(tn_, tn_ + fp_, confidence)
    ppv = wilson_ci(tp_, tp_ + fp_, confidence)
    npv = wilson_ci(tn_, tn_ + fn_, confidence)
    return JudgeErrorRates(se, sp, _complement(se), _complement(sp), ppv, npv)


def _judge_positive_mask(judge_positive: Sequence[bool] | None, n_strata: int) -> NDArray[np.bool_]:
    if judge_positive is None:
        if n_strata != 2:
            raise CalibrationInputError(
                f"pass judge_positive (one bool per stratum) when there are {n_strata} strata, not 2"
            )
        return np.array([True, False])
    mask = np.asarray(judge_positive, dtype=bool)
    if mask.shape != (n_strata,):
        raise CalibrationInputError(
            f"judge_positive needs one bool per stratum ({n_strata}); got {len(mask)}"
        )
    return mask


def _logit_delta(
    w: _Arr,
    p: _Arr,
    n: _Arr,
    pos: NDArray[np.bool_],
    N_total: float,
    z: float,
    confidence: float,
    phase1: bool,
    name: str,
) -> Estimate:
    # logit(rate) = log A - log B, A over the strata that count as "correct", B over the others.
    a = float(np.sum(w[pos] * p[pos]))
    b = float(np.sum(w[~pos] * p[~pos]))
    binomial = w * w * p * (1 - p) / n
    var = float(binomial[pos].sum() / a**2 + binomial[~pos].sum() / b**2)
    if phase1:
        # Multinomial variance of the shares W: Var(g'W) = (sum W g^2 - (sum W g)^2) / N.
        g = np.where(pos, p / a, -p / b)
        var += float((np.sum(w * g * g) - np.sum(w * g) ** 2) / N_total)
    centre = np.log(a / b)
    sd = np.sqrt(var)
    return Estimate(
        float(a / (a + b)),
        float(expit(centre - z * sd)),
        float(expit(centre + z * sd)),
        f"bayes_inversion_logit{'_phase1' if phase1 else ''}",
        confidence,
    )


def _posterior_bootstrap(
    w: _Arr,
    N: _Arr,
    n: _Arr,
    x: _Arr,
    pos: NDArray[np.bool_],
    confidence: float,
    phase1: bool,
    n_boot: int,
    seed: int,
) -> tuple[Estimate, Estimate]:
    if n_boot < 1000:
        raise CalibrationInputError(f"n_boot must be >= 1000 for stable percentile limits; got {n_boot}")
    rng = np.random.default_rng(seed)
    p_draw = rng.beta(x + 0.5, n - x + 0.5, size=(n_boot, len(n)))
    w_draw = rng.dirichlet(N, size=n_boot) if phase1 else np.broadcast_to(w, p_draw.shape)
    tail = (1 - confidence) / 2
    out = []
    for prob, draws, mask in ((x / n, p_draw, pos), (1 - x / n, 1 - p_draw, ~pos)):
        est = float(np.sum(w[mask] * prob[mask]) / np.sum(w * prob))
        boot = np.sum(w_draw[:, mask] * draws[:, mask], axis=1) / np.sum(w_draw * draws, axis=1)
        if 0.0 < est < 1.0:
            # The Jeffreys prior adds half an event to every stratum, which shifts the draws when many
            # strata have none (the pooled overall row): the percentile limits then sat below the
            # estimate. Re-centre the draws' spread on the estimate on the logit scale (keeps the
            # asymmetry of the posterior, and the estimate strictly inside its interval).
            draws_logit = logit(np.clip(boot, 1e-12, 1 - 1e-12))
            q_low, q_mid, q_high = np.quantile(draws_logit, [tail, 0.5, 1 - tail])
            centre = float(logit(est))
            low = float(expit(centre - (q_mid - q_low)))
            high = float(expit(centre + (q_high - q_mid)))
        else:
            low, high = (float(v) for v in np.quantile(boot, [tail, 1 - tail]))
            low = 0.0 if est == 0.0 else low
            high = 1.0 if est == 1.0 else high
        out.append(
            Estimate(est, low, high, "bayes_inversion_jeffreys_bootstrap", confidence, ("few_events",))
        )
    return out[0], out[1]


def _complement(est: Estimate) -> Estimate:
    return Estimate(1 - est.rate, 1 - est.high, 1 - est.low, est.method, est.confidence, est.flags)
