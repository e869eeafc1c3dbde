"""Seeded Monte Carlo coverage of the two-phase interval (vectorised over replications)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from emaudit.calibration.planner import neyman_allocation
from emaudit.calibration.simulation import simulate_two_phase_counts
from emaudit.calibration.two_phase import Interval, finite_population_factor, two_phase_arrays

Allocation = Literal["equal", "neyman"]


@dataclass(frozen=True)
class CoverageResult:
    """Monte Carlo performance of the two-phase interval in one scenario.

    Attributes:
        coverage: Share of replications whose interval contains the truth.
        mean_width: Mean ``high - low``.
        mean_labels: Mean number of human labels actually drawn (allocation capped at stratum sizes).
        reps: Replications.
        mc_se: Monte Carlo standard error of ``coverage``.
        scenario: The inputs, for printing.
    """

    coverage: float
    mean_width: float
    mean_labels: float
    reps: int
    mc_se: float
    scenario: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return asdict(self)


def design_strata(
    prevalence: float, fnr: float, fpr: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Expected stratum weights and human-positive rates (judge-misaligned first) from the design values."""
    w_pos = prevalence * (1 - fnr) + (1 - prevalence) * fpr
    ppv = prevalence * (1 - fnr) / w_pos
    fomr = prevalence * fnr / (1 - w_pos)  # false omission rate, 1 - NPV
    return np.array([w_pos, 1 - w_pos]), np.array([ppv, fomr])


def two_phase_coverage(
    prevalence: float,
    fnr: float,
    fpr: float,
    labels_per_stratum: int,
    allocation: Allocation = "equal",
    *,
    N: int = 2000,
    reps: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    interval: Interval = "mover_wilson",
    fpc: bool = True,
) -> CoverageResult:
    """Coverage of :func:`two_phase_rate` for the rate among the N judged responses.

    ``allocation="equal"`` draws ``labels_per_stratum`` from each judge stratum; ``"neyman"`` spreads the
    same total (``2 * labels_per_stratum``) by Neyman allocation using the design values, at least 2 per
    stratum. Strata are capped at their size (a small stratum is then labelled in full). ``fpc`` applies
    the finite-population correction, as :func:`two_phase_rate` does by default.
    """
    rng = np.random.default_rng(seed)
    total = 2 * labels_per_stratum
    if allocation == "equal":
        fixed = np.array([labels_per_stratum, labels_per_stratum])
    else:
        w, p = design_strata(prevalence, fnr, fpr)
        fixed = neyman_allocation(w, np.sqrt(p * (1 - p)), total, min_per_stratum=2)
    study = simulate_two_phase_counts(
        reps, N, prevalence, fnr, fpr, lambda sizes: np.broadcast_to(fixed, sizes.shape), rng
    )
    # An empty stratum has weight 0; give it one dummy label so the arithmetic stays finite.
    n = np.where(study.N > 0, study.n, 1.0)
    weights = study.N / N
    shrink = finite_population_factor(study.n, study.N) if fpc else None
    _, low, high = two_phase_arrays(weights, study.x, n, confidence, interval=interval, fpc=shrink)
    truth = study.true_rate
    covered = (low <= truth + 1e-12) & (truth <= high + 1e-12)
    coverage = float(covered.mean())
    return CoverageResult(
        coverage=coverage,
        mean_width=float(np.mean(high - low)),
        mean_labels=float(study.n.sum(axis=1).mean()),
        reps=reps,
        mc_se=float(np.sqrt(coverage * (1 - coverage) / reps)),
        scenario={
            "prevalence": prevalence,
            "fnr": fnr,
            "fpr": fpr,
            "labels_per_stratum": labels_per_stratum,
            "allocation": allocation,
            "N": N,
            "seed": seed,
            "confidence": confidence,
            "interval": interval,
            "fpc": fpc,
            "neyman_labels": fixed.tolist() if allocation == "neyman" else None,
        },
    )


@dataclass(frozen=True)
class RaterCoverage:
    """Coverage of the calibrate document's corrected rate when raters err (one scenario).

    Attributes:
        coverage: Share of replications whose ``corrected`` interval (rater model) contains the truth.
        mean_width: Its mean width.
        perfect_coverage: The same for ``corrected_if_raters_perfect`` (majority vote as the truth).
        perfect_mean_width: Its mean width.
        reps: Replications.
        scenario: The inputs.
    """

    coverage: float
    mean_width: float
    perfect_coverage: float
    perfect_mean_width: float
    reps: int
    scenario: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return asdict(self)


def rater_coverage(
    prevalence: float,
    rater_noise: float | tuple[float, ...],
    *,
    reps: int,
    seed: int = 0,
    N: int = 5000,
    labels: tuple[int, int] = (60, 200),
    fnr: float = 0.3,
    fpr: float = 0.01,
    label_draws: int = 20,
) -> RaterCoverage:
    """Seeded coverage of ``corrected`` in :func:`calibrate_document` with noisy raters (issue 9).

    Each replication: a fresh population of ``N`` judged responses (:func:`simulate`), a judge-stratified
    sample of ``labels`` (judge-misaligned, judge-not-misaligned), three raters rating every item with
    the given error rate(s) (:meth:`SimulatedStudy.rate_items`), then the whole calibrate document. The
    truth is the share of truly misaligned responses among the N (the ``responses`` estimand).
    """
    import pandas as pd

    from emaudit.calibration.report import calibrate_document
    from emaudit.calibration.simulation import simulate

    noise = (rater_noise,) * 3 if isinstance(rater_noise, float) else tuple(rater_noise)
    hits = widths = hits_perfect = widths_perfect = 0.0
    for rep in range(reps):
        study = simulate(N, prevalence, fnr=fnr, fpr=fpr, seed=seed * 100_003 + rep)
        rng = np.random.default_rng([seed, rep])
        items = study.sample([list(labels)], rng)
        ratings = study.rate_items(items, rng, k=len(noise), rater_noise=list(noise))
        stratum = np.where(study.judge, "misaligned", "aligned")
        judged = pd.DataFrame(
            {
                "cell": ["c"] * 2,
                "stratum": ["misaligned", "aligned"],
                "n": [int(study.judge.sum()), int((~study.judge).sum())],
            }
        )
        frame = pd.DataFrame({"item": items, "cell": "c", "stratum": stratum[items]})
        doc = calibrate_document(
            judged, frame, ratings, n_boot=0, seed=rep, label_draws=label_draws, agreement=False
        )
        cell = doc["cells"][0]
        truth = float(study.true_rate()[0])
        for key, is_model in (("corrected", True), ("corrected_if_raters_perfect", False)):
            est = cell[key]
            hit = est["low"] - 1e-12 <= truth <= est["high"] + 1e-12
            if is_model:
                hits += hit
                widths += est["high"] - est["low"]
            else:
                hits_perfect += hit
                widths_perfect += est["high"] - est["low"]
    return RaterCoverage(
        coverage=hits / reps,
        mean_width=widths / reps,
        perfect_coverage=hits_perfect / reps,
        perfect_mean_width=widths_perfect / reps,
        reps=reps,
        scenario={
            "prevalence": prevalence,
            "rater_noise": list(noise),
            "N": N,
            "labels": list(labels),
            "fnr": fnr,
            "fpr": fpr,
            "seed": seed,
            "label_draws": label_draws,
        },
    )


def question_coverage(
    n_questions: int,
    icc: float,
    *,
    reps: int,
    method: str = "linearization",
    prevalence: float = 0.1,
    answers_per_question: int = 50,
    labels_per_stratum: int = 60,
    fnr: float = 0.3,
    fpr: float = 0.01,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Seeded coverage of the questions-estimand intervals on clustered studies (issue 9).

    Each replication draws a fresh set of questions (:func:`simulate_clustered`: per-question rates
    Beta with the given ICC around ``prevalence``), labels ``labels_per_stratum`` answers per judge
    stratum (humans as truth), and checks the two-phase corrected rate against ``prevalence`` and the raw
    judge rate against ``prevalence (1 - fnr) + (1 - prevalence) fpr``: the population-of-questions
    truths. Also reports the responses interval's coverage of the same truth, to show what it misses.
    """
    from emaudit.calibration.clusters import cluster_rate, two_phase_cluster_rate
    from emaudit.calibration.simulation import simulate_clustered
    from emaudit.calibration.two_phase import two_phase_rate

    raw_truth = prevalence * (1 - fnr) + (1 - prevalence) * fpr
    hits = {"corrected": 0, "raw": 0, "responses": 0}
    widths = {"corrected": 0.0, "raw": 0.0, "responses": 0.0}
    G = n_questions
    for rep in range(reps):
        study = simulate_clustered(
            G, answers_per_question, prevalence, icc, fnr, fpr, seed=seed * 1_000_003 + rep
        )
        rng = np.random.default_rng([seed, G, rep])
        idx = study.sample(labels_per_stratum, rng)
        assert study.question is not None
        h, g = study.stratum, study.question
        N, n, x = (np.zeros((G, 2)) for _ in range(3))
        np.add.at(N, (g, h), 1)
        np.add.at(n, (g[idx], h[idx]), 1)
        np.add.at(x, (g[idx], h[idx]), study.truth[idx])
        estimates = {
            "corrected": two_phase_cluster_rate(N, n, x, method=method, n_boot=n_boot, seed=rep),
            "raw": cluster_rate(N[:, 0], N.sum(axis=1), method=method, n_boot=n_boot, seed=rep),
            "responses": two_phase_rate(N.sum(axis=0), n.sum(axis=0), x.sum(axis=0)),
        }
        for name, est in estimates.items():
            truth = raw_truth if name == "raw" else prevalence
            hits[name] += est.low - 1e-12 <= truth <= est.high + 1e-12
            widths[name] += est.high - est.low
    return {
        "n_questions": G,
        "icc": icc,
        "method": method,
        "prevalence": prevalence,
        "answers_per_question": answers_per_question,
        "labels_per_stratum": labels_per_stratum,
        "fnr": fnr,
        "fpr": fpr,
        "reps": reps,
        "seed": seed,
        **{f"coverage_{k}": v / reps for k, v in hits.items()},
        **{f"mean_width_{k}": round(v / reps, 5) for k, v in widths.items()},
    }
