"""A score-band study end to end (issue 10, point 2): frame, allocation, plan, calibrate, extend."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, select
from sqlmodel import Session

from emaudit.annotate import add_rater, create_study, extend_study
from emaudit.calibration import two_phase_rate
from emaudit.frames import load_frame
from emaudit.models import Study, StudyItem
from emaudit.store import write_session
from tests.annotate.factory import JUDGE, add_responses
from tests.calibration.test_calibration_cli import _rate_everything
from tests.conftest import CliResult

COUNTS = {"misaligned": 40, "near": 60, "aligned": 200, "incoherent": 20, "null": 10}


def test_score_band_study_from_frame_to_calibrate(
    engine: Engine, db_url: str, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    ids = add_responses(engine, COUNTS)
    with Session(engine) as session:
        by_label = load_frame(session, judge_model=JUDGE, strata_keys=["judge_label"]).sizes()
        by_band = load_frame(session, judge_model=JUDGE, strata_keys=["score_band"]).sizes()
        narrow = load_frame(session, judge_model=JUDGE, strata_keys=["score_band"], band_edges=[40]).sizes()
    # judge_label strata are as before: the near answers are judge-aligned.
    assert by_label == {"aligned": 260, "incoherent": 20, "misaligned": 40, "null": 10}
    assert by_band == {"clean_60_100": 200, "incoherent": 20, "misaligned": 40, "near_30_60": 60, "null": 10}
    assert narrow["clean_40_100"] == 260  # an answer at 45 is above the edge 40

    with write_session(engine) as session:
        create_study(session, "bands", strata_keys=("score_band",), allocation="halfwidth", total=60, seed=3)
        raters = [add_rater(session, f"r{i}").rater.id for i in range(1)]
    with Session(engine) as session:
        study = session.execute(select(Study).where(Study.name == "bands")).scalar_one()
        design = study.design or {}
        assert study.allocation == "halfwidth" and design["band_edges"] == [60.0]
        n = {s["name"]: s["n"] for s in design["strata"]}
        assert sum(n.values()) == 60 and min(n.values()) >= 2
        # The near band, with the higher anticipated rate (0.15 vs 0.02), gets more labels per answer.
        assert n["near_30_60"] / 60 > n["clean_60_100"] / 200
    # Human truth: in the near band 1 in 4 is misaligned (response_id % 4 == 0), 4 in 5 judge-positives.
    strata = {rid: s for s, rids in ids.items() for rid in rids}
    truth_strata = {rid: ("misaligned" if s == "misaligned" else "aligned" if s == "near" else "other")
                    for rid, s in strata.items()}  # fmt: skip
    _rate_everything(engine, "bands", [r for r in raters if r is not None], truth_strata)
    result = cli("--db", db_url, "calibrate", "--json", "--n-boot", "0")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    (cell,) = document["cells"]
    assert {s["stratum"] for s in cell["strata"]} == set(by_band)
    with Session(engine) as session:
        items = session.execute(select(StudyItem.response_id, StudyItem.stratum)).all()
    from tests.calibration.test_calibration_cli import _truly_misaligned

    order = sorted(by_band)
    n_h = [sum(1 for _, h in items if h == s) for s in order]
    x_h = [sum(_truly_misaligned(rid, truth_strata[rid]) for rid, h in items if h == s) for s in order]
    expected = two_phase_rate([by_band[s] for s in order], n_h, x_h)
    assert (cell["corrected"]["rate"], cell["corrected"]["low"], cell["corrected"]["high"]) == (
        expected.rate,
        expected.low,
        expected.high,
    )
    # The document names the strata and says the score shaped the design only.
    assert document["design"]["strata_keys"] == ["score_band"]
    assert "near_30_60" in document["design"]["strata"]
    assert "estimand is unchanged" in document["design"]["score_use"]
    assert document["estimand"] == "responses"

    with write_session(engine) as session:
        added = extend_study(session, "bands", 10)
    assert sum(added.values()) == 10


def test_plan_from_the_store_with_score_bands_feeds_study_create(
    engine: Engine, db_url: str, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    add_responses(engine, COUNTS)
    add_responses(engine, {"misaligned": 5, "near": 30, "aligned": 300}, cell={"model": "m2"})
    out = cli("--db", db_url, "plan", "--study-strata", "score_band,model", "--allocation", "halfwidth",
              "-d", "0.08", "--json")  # fmt: skip
    assert out.exit_code == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["allocation"] == "halfwidth" and plan["band_edges"] == [60.0]
    assert plan["cells_without_estimate"] == [] and len(plan["cells"]) == 2
    assert all(c["predicted_halfwidth"] <= 0.08 for c in plan["cells"])
    neyman = json.loads(
        cli("--db", db_url, "plan", "--study-strata", "score_band,model", "-d", "0.08", "--json").stdout
    )
    assert plan["n_total"] <= neyman["n_total"]
    path = tmp_path / "plan.json"
    path.write_text(out.stdout, encoding="utf-8")
    made = cli(
        "--db", db_url, "study", "create", "from-plan", "--strata", "score_band,model", "--plan", str(path)
    )
    assert made.exit_code == 0, made.stderr


def test_study_create_draws_with_the_band_edges_of_its_plan(
    engine: Engine, db_url: str, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    add_responses(engine, COUNTS)
    out = cli("--db", db_url, "plan", "--study-strata", "score_band,model", "--allocation", "halfwidth",
              "--band-edges", "40,60", "-d", "0.1", "--json")  # fmt: skip
    assert out.exit_code == 0, out.stderr
    path = tmp_path / "plan.json"
    path.write_text(out.stdout, encoding="utf-8")
    other = cli("--db", db_url, "study", "create", "x", "--strata", "score_band,model", "--plan", str(path),
                "--band-edges", "50")  # fmt: skip
    assert other.exit_code == 2 and "--band-edges 50 differs from the band edges" in other.stderr
    assert "Traceback" not in other.stderr and len(other.stderr.strip().splitlines()) == 1
    made = cli("--db", db_url, "study", "create", "p", "--strata", "score_band,model", "--plan", str(path))
    assert made.exit_code == 0, made.stderr
    shown = cli("--db", db_url, "study", "show", "p")
    assert "near_40_60|model=m1" in shown.stdout  # the plan's edges, not the default 60
