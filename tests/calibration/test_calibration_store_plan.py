"""Plans from the store (issue 10, point 4): every cell estimable, predicted half-widths vs simulation."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest

from emaudit.calibration.simulation import simulated_halfwidth
from emaudit.calibration.store_plan import plan_cell, predicted_halfwidth
from tests.conftest import REFERENCE, CliResult, requires_shared

RESPONSES = REFERENCE / "replicating-model-organisms" / "em_organism_dir" / "data" / "responses"
# A seeded slice of the reference data (the full 24 cells: benchmarks/store_plan_check.py): three models'
# bad-medical-advice answers plus one extreme-sports file, 1,600 answers, cells crossed by model x domain.
FILES = [
    ("Qwen2.5-14B-Instruct_bad-medical-advice.csv", "Qwen2.5-14B-Instruct", "bad-medical-advice"),
    ("Llama-3.2-1B-Instruct_bad-medical-advice.csv", "Llama-3.2-1B-Instruct", "bad-medical-advice"),
    ("gemma-3-4b-it_bad-medical-advice.csv", "gemma-3-4b-it", "bad-medical-advice"),
    ("gemma-3-4b-it_extreme-sports.csv", "gemma-3-4b-it", "extreme-sports"),
]


def test_plan_cell_floors_small_strata_and_meets_the_target() -> None:
    # A 3-answer misaligned stratum whose Neyman share is ~0: the floor min(2, 3) = 2 keeps it sampled.
    n, hw = plan_cell([3, 500, 7], [0.8, 0.05, 0.1], 0.05, min_per_stratum=2)
    assert n[0] >= 2 and n[2] >= 2 and hw <= 0.05
    # A floor above a stratum's size takes that stratum whole instead of refusing.
    n, _ = plan_cell([3, 500], [0.8, 0.05], 0.05, min_per_stratum=10)
    assert n[0] == 3
    # Smaller total one label short of the plan would miss the target (the search stops at the first fit).
    smaller = n.copy()
    smaller[1] -= 1
    assert predicted_halfwidth(np.array([3.0, 500.0]), np.array([0.8, 0.05]), smaller) > 0.05 - 0.002


@requires_shared
def test_planner_reading_the_reference_store_leaves_no_cell_without_an_estimate(
    sqlite_url: str, cli: Callable[..., CliResult]
) -> None:
    assert cli("--db", sqlite_url, "init").exit_code == 0
    for name, model, domain in FILES:
        out = cli("--db", sqlite_url, "responses", "import", "--add-questions", str(RESPONSES / name),
                  "--model", model, "--condition", f"domain={domain}")  # fmt: skip
        assert out.exit_code == 0, out.stderr
    out = cli("--db", sqlite_url, "plan", "--study-strata", "judge_label,model,domain", "-d", "0.05",
              "--min-per-stratum", "2", "--json")  # fmt: skip
    assert out.exit_code == 0, out.stderr
    plan = json.loads(out.stdout)
    assert len(plan["cells"]) == 4 and plan["cells_without_estimate"] == []
    for i, cell in enumerate(plan["cells"]):
        N = np.array([s["N"] for s in cell["strata"]])
        n = np.array([s["n"] for s in cell["strata"]])
        p = np.array([s["expected_rate"] for s in cell["strata"]])
        assert np.all(n >= 1) and np.all(n <= N), cell  # every judged stratum labelled: an estimate
        assert cell["reaches_target"] and cell["predicted_halfwidth"] <= 0.05
        # Tolerance 15% (the issue's); 400 seeded replications; the full benchmark measured <= 1.5% off.
        simulated = simulated_halfwidth(N, p, n, reps=400, seed=i)
        assert cell["predicted_halfwidth"] == pytest.approx(simulated, rel=0.15), cell["cell"]
    assert sum(plan["sample_sizes"].values()) == plan["n_total"]
    # The score-band design (issue 10, point 2): half-width allocation over the bands, same checks.
    out = cli("--db", sqlite_url, "plan", "--study-strata", "score_band,model,domain", "-d", "0.05",
              "--allocation", "halfwidth", "--json")  # fmt: skip
    assert out.exit_code == 0, out.stderr
    bands = json.loads(out.stdout)
    assert bands["cells_without_estimate"] == [] and bands["n_total"] <= plan["n_total"]
    for i, cell in enumerate(bands["cells"]):
        assert {s["judge_label"] for s in cell["strata"]} >= {"misaligned", "near_30_60", "clean_60_100"}
        N, n, p = (np.array([s[k] for s in cell["strata"]]) for k in ("N", "n", "expected_rate"))
        assert cell["predicted_halfwidth"] <= 0.05
        simulated = simulated_halfwidth(N, p, n, reps=400, seed=i)
        assert cell["predicted_halfwidth"] == pytest.approx(simulated, rel=0.15), cell["cell"]
    # The same plan as a table names the cells and says every cell gets an estimate.
    table = cli("--db", sqlite_url, "plan", "--study-strata", "judge_label,model,domain", "-d", "0.05")
    assert "every cell gets an estimate" in table.stdout
    bad = cli("--db", sqlite_url, "plan", "--study-strata", "model")
    assert bad.exit_code == 2 and "must include judge_label" in bad.stderr
    missing = cli("--db", sqlite_url, "plan", "--ppv", "0.8")
    assert missing.exit_code == 2 and "--study-strata" in missing.stderr
