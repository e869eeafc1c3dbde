"""The questions estimand (issue 9, point 2): questions as clusters, by hand, simulated, on reference data."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta, norm
from scipy.stats import t as student_t

from emaudit.calibration import calibrate_document, two_phase_rate, wilson_ci
from emaudit.calibration.clusters import cluster_rate, two_phase_cluster_rate
from emaudit.calibration.simulation import simulate_clustered
from tests.conftest import REFERENCE, CliResult, requires_shared

QWEN = (
    REFERENCE
    / "replicating-model-organisms/em_organism_dir/data/responses/Qwen2.5-14B-Instruct_bad-medical-advice.csv"
)


def test_cluster_rate_by_hand() -> None:
    # p = 60/200; z_g = (y_g - p m_g)/200 = (-.075, -.025, .025, .075); V = 4/3 * .0125 = 1/60
    # Korn-Graubard: n_eff = .21 / V = 12.6, times (z / t_3)^2 = (1.959964 / 3.182446)^2 -> 4.779083;
    # x = .3 n_eff = 1.433725; limits Beta(.025; x, n_eff - x + 1), Beta(.975; x + 1, n_eff - x).
    est = cluster_rate([0, 10, 20, 30], [50, 50, 50, 50])
    n_eff = 12.6 * (norm.ppf(0.975) / student_t.ppf(0.975, 3)) ** 2
    assert n_eff == pytest.approx(4.779083, abs=1e-6)
    x = 0.3 * n_eff
    assert est.rate == pytest.approx(0.3)
    assert est.low == pytest.approx(beta.ppf(0.025, x, n_eff - x + 1), abs=1e-12)
    assert est.high == pytest.approx(beta.ppf(0.975, x + 1, n_eff - x), abs=1e-12)
    assert (round(est.low, 4), round(est.high, 4)) == (0.0204, 0.8)
    assert (
        est.estimand == "questions" and "few_questions" in est.flags and est.method == "cluster_korn_graubard"
    )


def test_two_phase_cluster_rate_keeps_the_point_estimate_and_is_wider() -> None:
    rng = np.random.default_rng(3)
    N = rng.integers(5, 40, size=(12, 2)).astype(float)
    n = np.minimum(N, rng.integers(2, 6, size=(12, 2)))
    x = np.minimum(n, rng.binomial(n.astype(int), [0.7, 0.1]))
    clustered = two_phase_cluster_rate(N, n, x)
    plain = two_phase_rate(N.sum(axis=0), n.sum(axis=0), x.sum(axis=0))
    assert clustered.rate == pytest.approx(plain.rate, abs=1e-12)
    # MOVER adds the questions' part to the responses limits, so it can only widen them.
    assert clustered.low <= plain.low + 1e-12 and clustered.high >= plain.high - 1e-12
    boot = two_phase_cluster_rate(N, n, x, method="bootstrap", n_boot=500, seed=1)
    assert boot.rate == pytest.approx(plain.rate) and boot.method.endswith("bootstrap")


def test_no_positive_anywhere_falls_back_to_an_exact_interval() -> None:
    est = cluster_rate([0, 0, 0], [50, 50, 50])
    assert est.rate == 0.0 and est.low == 0.0 and 0 < est.high < 0.03
    assert "no_between_question_variance" in est.flags


def _coverage(G: int, icc: float, reps: int, method: str) -> tuple[float, float]:
    mu, hits, hits_raw = 0.1, 0, 0
    raw_truth = mu * 0.7 + (1 - mu) * 0.01
    for r in range(reps):
        study = simulate_clustered(G, 50, mu, icc, 0.3, 0.01, seed=r)
        rng = np.random.default_rng([G, r])
        idx = study.sample(60, rng)
        assert study.question is not None
        h, g = study.stratum, study.question
        N, n, x = (np.zeros((G, 2)) for _ in range(3))
        np.add.at(N, (g, h), 1)
        np.add.at(n, (g[idx], h[idx]), 1)
        np.add.at(x, (g[idx], h[idx]), study.truth[idx])
        est = two_phase_cluster_rate(N, n, x, method=method, n_boot=400, seed=r)  # type: ignore[arg-type]
        hits += est.low <= mu <= est.high
        raw = cluster_rate(N[:, 0], N.sum(axis=1), method=method, n_boot=400, seed=r)  # type: ignore[arg-type]
        hits_raw += raw.low <= raw_truth <= raw.high
    return hits / reps, hits_raw / reps


def test_questions_coverage_slice() -> None:
    # Seeded slice of benchmarks/question_coverage.py (2,000 replications there). 300 replications: MC SE
    # at 95% is 0.013; tolerance 0.90 (about 4 SE below the 0.95 nominal). G = 24, ICC 0.15 (the reference
    # data's middle); the bootstrap under-covers here, which is why linearisation is the default.
    corrected, raw = _coverage(24, 0.15, 300, "linearization")
    assert corrected >= 0.90 and raw >= 0.90, (corrected, raw)
    boot_corrected, _ = _coverage(24, 0.15, 150, "bootstrap")
    assert boot_corrected < corrected


def _frames_with_questions(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    study = simulate_clustered(8, 100, 0.15, 0.2, 0.3, 0.02, seed=seed)
    assert study.question is not None
    rng = np.random.default_rng(seed)
    stratum = np.where(study.judge, "misaligned", "aligned")
    question = np.char.add("q", study.question.astype(str))
    items = study.sample(40, rng)
    ratings = study.rate_items(items, rng, k=2, rater_noise=0.0)
    judged = pd.DataFrame({"cell": "m", "stratum": stratum, "question": question})
    frame = pd.DataFrame({"item": items, "cell": "m", "stratum": stratum[items], "question": question[items]})
    return judged, frame, ratings


def test_calibrate_document_carries_both_estimands_and_per_question_rates() -> None:
    judged, items, ratings = _frames_with_questions()
    doc = calibrate_document(judged, items, ratings, n_boot=0)
    assert doc["estimand"] == "responses"
    cell = doc["cells"][0]
    responses, questions = cell["by_estimand"]["responses"], cell["by_estimand"]["questions"]
    assert cell["corrected"] == responses["corrected"] and cell["corrected"]["estimand"] == "responses"
    assert questions["corrected"]["estimand"] == "questions" and questions["n_questions"] == 8
    assert cell["n_questions"] == 8 and questions["errors"] == []
    width = lambda e: e["high"] - e["low"]  # noqa: E731
    assert width(questions["corrected"]) > width(responses["corrected"])
    assert width(questions["judge_rate"]) > width(responses["judge_rate"])
    # The raw judge rate (responses) is the Wilson interval of the judged share.
    n_pos = int((judged["stratum"] == "misaligned").sum())
    assert responses["judge_rate"]["low"] == pytest.approx(wilson_ci(n_pos, len(judged)).low)
    per_question = {q["question"]: q for q in cell["questions"]}
    assert sorted(per_question) == [f"q{g}" for g in range(8)]
    q0 = per_question["q0"]
    in_q0 = judged[judged["question"] == "q0"]
    assert q0["n_judged"] == len(in_q0)
    assert q0["judge_rate"] == pytest.approx((in_q0["stratum"] == "misaligned").mean())
    assert sum(q["n_labelled"] for q in cell["questions"]) == sum(s["n_labelled"] for s in cell["strata"])
    with_rate = [q for q in cell["questions"] if q["corrected"] is not None]
    assert with_rate and all(q["corrected"]["estimand"] == "responses" for q in with_rate)
    # --estimand questions: the headline follows, both stay side by side.
    switched = calibrate_document(judged, items, ratings, n_boot=0, estimand="questions")
    assert switched["estimand"] == "questions"
    assert switched["cells"][0]["corrected"] == questions["corrected"]
    assert switched["overall"]["by_estimand"]["questions"]["n_questions"] == 8
    json.dumps(switched, allow_nan=False)


def test_without_question_ids_the_questions_estimand_says_why() -> None:
    judged, items, ratings = _frames_with_questions(1)
    doc = calibrate_document(judged.drop(columns="question"), items, ratings, n_boot=0)
    questions = doc["cells"][0]["by_estimand"]["questions"]
    assert questions["corrected"] is None and "no question column" in questions["errors"][0]
    questions_doc = calibrate_document(
        judged.drop(columns="question"), items, ratings, n_boot=0, estimand="questions"
    )
    assert questions_doc["cells"][0]["corrected"] is None
    assert any("no question column" in e for e in questions_doc["cells"][0]["errors"])


@requires_shared
def test_qwen_bad_medical_questions_interval_at_least_twice_as_wide(
    sqlite_url: str, cli: Callable[..., CliResult]
) -> None:
    assert cli("--db", sqlite_url, "init").exit_code == 0
    imported = cli(
        "--db",
        sqlite_url,
        "responses",
        "import",
        "--add-questions",
        str(QWEN),
        "--model",
        "Qwen2.5-14B-Instruct",
    )
    assert imported.exit_code == 0, imported.stderr
    rows = {}
    for estimand in ("responses", "questions"):
        out = cli("--db", sqlite_url, "rates", "--json", "--estimand", estimand)
        assert out.exit_code == 0, out.stderr
        (rows[estimand],) = json.loads(out.stdout)
    responses, questions = rows["responses"], rows["questions"]
    assert questions["estimand"] == "questions" and questions["n_questions"] == 8
    assert questions["rate"] == responses["rate"]
    ratio = (questions["ci_high"] - questions["ci_low"]) / (responses["ci_high"] - responses["ci_low"])
    # Measured: 84/400 = 21.0% misaligned; Wilson [17.3, 25.3], questions [4.5, 50.2] -> 5.7x as wide.
    assert ratio >= 2.0, ratio
    table = cli("--db", sqlite_url, "rates", "--estimand", "questions")
    assert "questions" in table.stdout
