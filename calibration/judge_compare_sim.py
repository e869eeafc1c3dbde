"""Seeded simulation of two judges on one study drawn by the first (the acceptance of issue 11).

Truth is a finite population of N responses with a misaligned share ``prevalence``; judge A and
judge B err independently given the truth with their own FNR / FPR; humans are perfect. The
study is stratified by A's label (equal allocation); B's verdicts are added afterwards, either
on the study's items only or on every response. :func:`two_judge_replications` runs
:func:`emaudit.calibration.judge_compare.compare_judges` on each replication and counts how
often each interval covers the population's true value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from emaudit.calibration.judge_compare import compare_judges

__all__ = ["JudgePairCoverage", "simulate_two_judge_study", "two_judge_replications"]


def simulate_two_judge_study(
    rng: np.random.Generator,
    *,
    n_population: int = 5000,
    prevalence: float = 0.10,
    judge_a: tuple[float, float] = (0.30, 0.01),
    judge_b: tuple[float, float] = (0.10, 0.05),
    per_stratum: int | dict[str, int] = 150,
) -> dict[str, Any]:
    """One population, one A-stratified study, and both judges' verdicts.

    Args:
        rng: Source of randomness.
        n_population: N.
        prevalence: Share of truly misaligned responses (drawn, then fixed: the estimand is
            the realised share of these N).
        judge_a / judge_b: (FNR, FPR) of each judge.
        per_stratum: Human-labelled items drawn from each of A's strata (``A+``, ``A-``), or a
            count per stratum.

    Returns:
        ``items``, ``verdicts``, ``strata_sizes``, ``population_labels`` (both judges'
        counts over all N) and ``truth`` (true rate, FNR and FPR of each judge on these N).
    """
    y = rng.random(n_population) < prevalence
    labels = {}
    for name, (fnr, fpr) in (("A", judge_a), ("B", judge_b)):
        draw = rng.random(n_population)
        labels[name] = np.where(y, draw >= fnr, draw < fpr)
    # alignment scores consistent with the labels (misaligned: below 30)
    scores = {
        name: np.where(label, rng.uniform(0, 30, n_population), rng.uniform(30, 100, n_population))
        for name, label in labels.items()
    }
    strata = np.where(labels["A"], "A+", "A-")
    sizes = {h: int((strata == h).sum()) for h in ("A+", "A-")}
    wanted = per_stratum if isinstance(per_stratum, dict) else dict.fromkeys(sizes, per_stratum)
    chosen = np.concatenate(
        [rng.choice(np.flatnonzero(strata == h), size=min(wanted[h], sizes[h]), replace=False) for h in sizes]
    )
    items = pd.DataFrame({"item": chosen, "stratum": strata[chosen], "human": y[chosen].astype(float)})
    verdicts = pd.concat(
        [
            pd.DataFrame(
                {
                    "item": chosen,
                    "judge": name,
                    "label": labels[name][chosen].astype(float),
                    "score": scores[name][chosen],
                }
            )
            for name in ("A", "B")
        ],
        ignore_index=True,
    )
    population = {
        name: {"positive": int(label.sum()), "negative": int((~label).sum())}
        for name, label in labels.items()
    }
    truth: dict[str, float] = {"rate": float(y.mean())}
    for name, label in labels.items():
        truth[f"fnr_{name}"] = float(np.mean(~label[y]))
        truth[f"fpr_{name}"] = float(np.mean(label[~y]))
    return {
        "items": items,
        "verdicts": verdicts,
        "strata_sizes": sizes,
        "population_labels": population,
        "truth": truth,
    }


@dataclass(frozen=True)
class JudgePairCoverage:
    """Shares of replications whose interval covered the truth (and related counts).

    Attributes:
        replications: How many were run.
        corrected_a / corrected_b_population / corrected_b_sample: Coverage of the true rate
            by A's corrected rate, B's post-stratified by its population labels, and B's with
            its labels on the study's items only.
        fnr_b / fpr_b: Coverage of B's true FNR / FPR on these N.
        fnr_difference: Coverage of the true FNR_B - FNR_A.
        fnr_difference_below_zero: Share whose FNR_B - FNR_A interval lies below 0.
        raw_rates_differ: Share where A's and B's raw-rate intervals do not overlap.
    """

    replications: int
    corrected_a: float
    corrected_b_population: float
    corrected_b_sample: float
    fnr_b: float
    fpr_b: float
    fnr_difference: float
    fnr_difference_below_zero: float
    raw_rates_differ: float


def _covers(estimate: Any, value: float) -> bool:
    return bool(estimate.low <= value <= estimate.high)


def two_judge_replications(
    replications: int, *, seed: int = 0, n_draws: int = 1000, **study: Any
) -> JudgePairCoverage:
    """Run ``replications`` seeded studies (``study`` as :func:`simulate_two_judge_study`);
    ``n_draws`` posterior draws per interval."""
    rng = np.random.default_rng(seed)
    hits = np.zeros(8)
    for _ in range(replications):
        sim = simulate_two_judge_study(rng, **study)
        truth = sim["truth"]
        with_population = compare_judges(
            sim["items"],
            sim["verdicts"],
            sim["strata_sizes"],
            population_labels=sim["population_labels"],
            n_boot=0,
        )
        a, b = with_population.judge("A"), with_population.judge("B")
        difference = with_population.difference("B", "fnr").difference
        hits += [
            _covers(a.corrected_rate, truth["rate"]),
            _covers(b.corrected_rate, truth["rate"]),
            # B judged on the study's items only: its corrected rate is the design-weighted human
            # rate (the same for every judge), reported as human_rate
            _covers(with_population.human_rate, truth["rate"]),
            _covers(b.fnr, truth["fnr_B"]),
            _covers(b.fpr, truth["fpr_B"]),
            _covers(difference, truth["fnr_B"] - truth["fnr_A"]),
            difference.high < 0,
            a.raw_rate.high < b.raw_rate.low or b.raw_rate.high < a.raw_rate.low,
        ]
    shares = hits / replications
    return JudgePairCoverage(replications, *(float(v) for v in shares))
