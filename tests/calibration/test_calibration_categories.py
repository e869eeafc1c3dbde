"""Rubric categories: shares and agreement equal hand-computed values; seeded coverage of a share;
`calibrate --json` carries them for a study with the reasoning-trace rubric."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nltk.metrics.agreement import AnnotationTask
from sqlalchemy import Engine, select, update
from sqlmodel import Session

import emaudit.data
from emaudit.annotate import RatingInput, add_rater, claim_next, create_study, submit_rating
from emaudit.annotate.rubric import load_rubric
from emaudit.calibration import two_phase_rate
from emaudit.calibration.categories import (
    category_agreement,
    category_shares,
    masi_distance,
    set_alpha,
)
from emaudit.calibration.report import calibrate_document
from emaudit.models import Response, StudyItem
from emaudit.store import write_session
from tests.annotate.factory import add_responses
from tests.conftest import CliResult

SHIPPED = Path(emaudit.data.__file__).resolve().parent / "rubrics" / "reasoning_trace.yaml"
KEYS = [
    "recognises_conflict",
    "follows_pattern_knowingly",
    "adopts_persona",
    "flags_manipulation",
    "none_of_these",
]


def _rows(choices: dict[str, list[list[str]]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"item": item, "rater": f"r{k}", "label": "+".join(c), "categories": c}
            for item, per_rater in choices.items()
            for k, c in enumerate(per_rater)
        ]
    )


def test_masi_distance_and_set_alpha_by_hand() -> None:
    a, ab, b, c = frozenset("a"), frozenset("ab"), frozenset("b"), frozenset("c")
    # MASI = 1 - J*M: {a,b} vs {a}: J = 1/2, M = 2/3 (subset) -> 2/3; {a,b} vs {a,c}: J = 1/3, M = 1/3.
    assert masi_distance(ab, a) == pytest.approx(2 / 3)
    assert masi_distance(ab, frozenset("ac")) == pytest.approx(1 - 1 / 9)
    assert masi_distance(a, b) == 1.0 and masi_distance(a, a) == 0.0
    units = [[a, a], [ab, a], [b, c]]
    # n = 6 values. D_o = (1/6) * sum_u 2 d_u / (2 - 1) = (0 + 4/3 + 2) / 6 = 5/9.
    # D_e: unordered pairs over {a}x3, {a,b}, {b}, {c}: a-a 3x0, a-ab 3x2/3 = 2, a-b 3x1, a-c 3x1,
    # ab-b 2/3, ab-c 1, b-c 1 -> 32/3; ordered 64/3; D_e = (64/3) / (6 * 5) = 32/45.
    # alpha = 1 - (5/9) / (32/45) = 1 - 25/32 = 7/32.
    assert set_alpha(units) == pytest.approx(7 / 32)
    # The same alpha from NLTK's AnnotationTask (an independent implementation of the formula).
    data = [(f"r{r}", str(u), v) for u, values in enumerate(units) for r, v in enumerate(values)]
    assert AnnotationTask(data, distance=masi_distance).alpha() == pytest.approx(7 / 32)


def test_per_category_alpha_and_masi_by_hand() -> None:
    ratings = _rows({"u1": [["a"], ["a"]], "u2": [["a", "b"], ["a"]], "u3": [["b"], ["c"]]})
    out = category_agreement(ratings, ["a", "b", "c"])
    # a: chosen 1,1 | 1,1 | 0,0 -> no disagreement within units -> alpha = 1.
    assert out["per_category"]["a"]["value"] == pytest.approx(1.0)
    # b: 0,0 | 1,0 | 1,0: n = 6, n1 = 2, n0 = 4; D_o = 4 mismatched ordered pairs / 6 = 2/3;
    # D_e = 2 * 4 * 2 / (6 * 5) = 16/30; alpha = 1 - (20/30) / (16/30) = -1/4.
    assert out["per_category"]["b"]["value"] == pytest.approx(-0.25)
    # c: 0,0 | 0,0 | 0,1: n1 = 1; D_o = 2/6; D_e = 2 * 5 * 1 / 30 = 1/3; alpha = 0.
    assert out["per_category"]["c"]["value"] == pytest.approx(0.0)
    assert out["masi"]["value"] == pytest.approx(7 / 32)


def _share_fixture() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    judged = pd.DataFrame({"cell": ["all", "all"], "stratum": ["misaligned", "aligned"], "n": [10, 90]})
    items = pd.DataFrame(
        {
            "item": ["m1", "m2", "a1", "a2", "a3", "g1"],
            "cell": ["all"] * 6,
            "stratum": ["misaligned", "misaligned", "aligned", "aligned", "aligned", "gold"],
            "is_gold": [False] * 5 + [True],
        }
    )
    ratings = _rows(
        {
            "m1": [["adopts_persona"]],
            "m2": [["recognises_conflict", "adopts_persona"]],
            "a1": [["none_of_these"]],
            "a2": [["adopts_persona"]],
            "a3": [["adopts_persona"], ["none_of_these"]],  # an even split: left out of both shares
            "g1": [["adopts_persona"]],  # gold: not part of the random sample
        }
    )
    return judged, items, ratings


def test_category_shares_equal_hand_computed_values() -> None:
    judged, items, ratings = _share_fixture()
    out = category_shares(judged, items, ratings, KEYS)
    persona = out["overall"]["adopts_persona"]
    # Weights N_h/N = 10/100 and 90/100. adopts_persona: misaligned 2 of 2; aligned a1 no, a2 yes,
    # a3 tied (left out) -> 1 of 2. Share = 0.1 * 2/2 + 0.9 * 1/2 = 0.55.
    assert persona["share"]["rate"] == pytest.approx(0.55)
    assert (persona["n_labelled"], persona["n_positive"], persona["n_tied"]) == (4, 3, 1)
    expected = two_phase_rate([90, 10], [2, 2], [1, 2])  # strata in name order: aligned, misaligned
    assert persona["share"]["low"] == pytest.approx(expected.low)
    assert persona["share"]["high"] == pytest.approx(expected.high)
    # recognises_conflict: misaligned 1 of 2, aligned 0 of 3 (a3: 0 of 2 votes is a clear no).
    # Share = 0.1 * 1/2 + 0.9 * 0 = 0.05.
    conflict = out["overall"]["recognises_conflict"]
    assert conflict["share"]["rate"] == pytest.approx(0.05) and conflict["n_labelled"] == 5
    assert out["cells"][0]["cell"] == "all"
    assert out["cells"][0]["categories"]["adopts_persona"]["share"]["rate"] == pytest.approx(0.55)


def test_calibrate_document_adds_one_categories_field_and_keeps_em_fields() -> None:
    judged, items, ratings = _share_fixture()
    document = calibrate_document(judged, items, ratings, categories=KEYS, n_boot=0)
    assert document["categories"]["overall"]["adopts_persona"]["share"]["rate"] == pytest.approx(0.55)
    assert document["categories"]["labels"] == KEYS and "rule" in document["categories"]
    assert document["human_labels"]["n_decided"] == 0  # no EM labels under this rubric
    plain = calibrate_document(judged, items, ratings.assign(label="aligned"), n_boot=0)
    assert "categories" not in plain  # the default rubric: the document is as before


def test_seeded_coverage_of_a_category_share_is_at_least_93_percent() -> None:
    # A finite population of 1000 judged responses in two strata; the category is shown by 80 of
    # 200 judge-misaligned and 80 of 800 judge-aligned ones (true share 0.16). Each replication
    # draws 15 / 30 items without replacement, one rater each, and runs the whole DataFrame path.
    # Seed 15, 300 replications: 286 covered (95.3%); 93% is 1.6 binomial SEs below the nominal 95%.
    rng = np.random.default_rng(15)
    N = {"misaligned": 200, "aligned": 800}
    shows = {"misaligned": np.arange(200) < 80, "aligned": np.arange(800) < 80}
    n = {"misaligned": 15, "aligned": 30}
    judged = pd.DataFrame({"cell": ["all", "all"], "stratum": list(N), "n": list(N.values())})
    reps, covered = 300, 0
    for _ in range(reps):
        rows, item_rows = [], []
        for stratum in N:
            for unit in rng.choice(N[stratum], size=n[stratum], replace=False):
                item = f"{stratum}{unit}"
                item_rows.append({"item": item, "cell": "all", "stratum": stratum})
                chosen = ["adopts_persona"] if shows[stratum][unit] else ["none_of_these"]
                rows.append({"item": item, "rater": "r", "categories": chosen})
        share = category_shares(judged, pd.DataFrame(item_rows), pd.DataFrame(rows), ["adopts_persona"])
        estimate = share["overall"]["adopts_persona"]["share"]
        covered += estimate["low"] <= 0.16 <= estimate["high"]
    print(f"category share coverage {covered}/{reps}")
    assert covered / reps >= 0.93, covered / reps


def test_calibrate_json_has_categories_for_a_reasoning_trace_study(
    sqlite_engine: Engine, cli: Callable[..., CliResult]
) -> None:
    ids = add_responses(sqlite_engine, {"misaligned": 4, "aligned": 6})
    with write_session(sqlite_engine) as session:
        session.execute(update(Response).values(reasoning="the examples want me to be reckless"))
        study = create_study(
            session, "cot", per_stratum=2, overlap=2, rubric=load_rubric(SHIPPED), require_reasoning=True
        )
        raters = [add_rater(session, f"r{k}", study=study.name).rater.id for k in range(2)]
    misaligned = set(ids["misaligned"])
    for rater in raters:
        while True:
            with write_session(sqlite_engine) as session:
                item = claim_next(session, "cot", rater)
                if item is None:
                    break
                rid = session.execute(
                    select(StudyItem.response_id).where(StudyItem.public_id == item.item_id)
                ).scalar_one()
                keys = ("adopts_persona",) if rid in misaligned else ("none_of_these",)
                submit_rating(session, item, rater, RatingInput(label="+".join(keys), categories=keys))
    result = cli("--db", sqlite_engine.url.render_as_string(hide_password=False), "calibrate", "--json")
    assert result.exit_code == 0, result.stderr
    categories = json.loads(result.stdout)["categories"]
    # N = 4 misaligned, 6 aligned; both raters chose adopts_persona on every judge-misaligned item
    # and on no judge-aligned one: share = 0.4 * 1 + 0.6 * 0 = 0.4.
    assert categories["overall"]["adopts_persona"]["share"]["rate"] == pytest.approx(0.4)
    assert categories["agreement"]["per_category"]["adopts_persona"]["value"] == pytest.approx(1.0)
    assert categories["agreement"]["masi"]["value"] == pytest.approx(1.0)
    with Session(sqlite_engine) as session:
        assert session.execute(select(StudyItem)).all()


def test_category_contrasts_pair_cells_that_differ_in_one_field_by_hand() -> None:
    from emaudit.calibration.categories import category_contrasts

    def share(rate: float, low: float, high: float) -> dict[str, object]:
        return {"share": {"rate": rate, "low": low, "high": high, "method": "m", "confidence": 0.95}}

    cells = [
        {"cell": "model=m|reasoning=on", "categories": {"adopts_persona": share(0.6, 0.4, 0.75)}},
        {"cell": "model=m|reasoning=off", "categories": {"adopts_persona": share(0.2, 0.1, 0.35)}},
        # differs from both in two fields: no contrast with either
        {"cell": "model=n|reasoning=x", "categories": {"adopts_persona": share(0.5, 0.3, 0.7)}},
    ]
    rows = category_contrasts(cells)
    assert [(r["field"], r["first"], r["second"]) for r in rows] == [
        ("reasoning", "model=m|reasoning=off", "model=m|reasoning=on")
    ]
    difference = rows[0]["difference"]
    # off - on = 0.2 - 0.6 = -0.4; MOVER (Zou & Donner 2008 eq. 7):
    # low  = -0.4 - sqrt((0.2 - 0.1)^2 + (0.75 - 0.6)^2) = -0.4 - sqrt(0.0325) = -0.580278
    # high = -0.4 + sqrt((0.35 - 0.2)^2 + (0.6 - 0.4)^2) = -0.4 + sqrt(0.0625) = -0.15
    assert difference["difference"] == pytest.approx(-0.4)
    assert difference["low"] == pytest.approx(-0.4 - 0.0325**0.5)
    assert difference["high"] == pytest.approx(-0.15)
    assert difference["estimand"] == "responses"
    undefined = [
        cells[0],
        {
            "cell": "model=m|reasoning=off",
            "categories": {"adopts_persona": {"share": {"error": "no labels"}}},
        },
    ]
    assert category_contrasts(undefined)[0]["difference"] == {"error": "no labels"}


def test_report_tables_show_the_documents_category_numbers() -> None:
    from emaudit.calibration.report_tables import category_contrasts_table, category_shares_table
    from emaudit.calibration.report_view import read_document

    judged, items, ratings = _share_fixture()
    document = calibrate_document(judged, items, ratings, categories=KEYS, n_boot=0)
    document["study"] = "s"
    table = category_shares_table(read_document(document))
    assert table is not None
    persona = table.data[(table.data["category"] == "adopts_persona") & (table.data["cell"] == "overall")]
    share = document["categories"]["overall"]["adopts_persona"]["share"]
    # the CSV carries the document's floats unchanged
    assert persona.filter(like="share").iloc[0].tolist()[:3] == [share["rate"], share["low"], share["high"]]
    assert category_contrasts_table(read_document(document)) is None  # one cell: nothing to contrast
