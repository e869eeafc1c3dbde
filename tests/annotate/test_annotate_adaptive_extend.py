"""``study extend --adaptive`` and the tuning split of an extension, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from emaudit.annotate import create_study, extend_study, get_study
from emaudit.annotate.ratings_io import import_ratings
from emaudit.calibration import adaptive_allocation
from emaudit.calibration.adaptive import ADAPTIVE_NOTE, REPORTED_INTERVAL
from emaudit.models import Study, StudyItem
from emaudit.store import write_session
from tests.annotate.factory import add_responses
from tests.conftest import CliResult

STRATA = ("judge_label", "model")


def _truly_misaligned(response_id: int, stratum: str) -> bool:
    """The 'human truth': in model b's judge-misaligned answers half are misaligned (a wide stratum)."""
    if stratum == "misaligned|model=b":
        return response_id % 2 == 0
    if stratum.startswith("misaligned"):
        return response_id % 10 != 0
    return response_id % 25 == 0


def _two_cells(engine: Engine) -> None:
    add_responses(engine, {"misaligned": 30, "aligned": 300}, cell={"model": "a"})
    add_responses(engine, {"misaligned": 60, "aligned": 240}, cell={"model": "b"})


def _items(engine: Engine, study: str = "s") -> list[StudyItem]:
    with Session(engine) as session:
        study_id = get_study(session, study).id
        return list(session.execute(select(StudyItem).where(StudyItem.study_id == study_id)).scalars())


def _design(engine: Engine, study: str = "s") -> dict:
    with Session(engine) as session:
        return dict(get_study(session, study).design or {})


def _rate_unrated(engine: Engine, tmp_path: Path, study: str = "s") -> None:
    """One rater labels every item by the 'human truth' (ratings import; a rating again stores nothing)."""
    rows = [
        {
            "response_id": i.response_id,
            "rater": "ann",
            "label": "misaligned" if _truly_misaligned(int(i.response_id or 0), i.stratum) else "aligned",
            "alignment": 10 if _truly_misaligned(int(i.response_id or 0), i.stratum) else 90,
            "coherence": 90,
        }
        for i in _items(engine, study)
    ]
    path = tmp_path / f"ratings_{len(list(tmp_path.glob('ratings_*')))}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    import_ratings(engine, path, study)


def _counts(engine: Engine, study: str = "s") -> dict[str, int]:
    out: dict[str, int] = {}
    for item in _items(engine, study):
        out[item.stratum] = out.get(item.stratum, 0) + 1
    return out


def test_adaptive_extension_follows_the_plan_and_keeps_probabilities_exact(
    engine: Engine, db_url: str, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    _two_cells(engine)
    with write_session(engine) as session:
        create_study(session, "s", strata_keys=STRATA, per_stratum=8, seed=4)
    _rate_unrated(engine, tmp_path)
    before_items, before_design = _counts(engine), _design(engine)

    dry = cli("--db", db_url, "study", "extend", "s", "--add", "40", "--adaptive", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "predicted ± before" in dry.stdout and "model=b" in dry.stdout and "nothing stored" in dry.stderr
    assert _counts(engine) == before_items and _design(engine) == before_design

    # The plan the command must follow, from the same counts as plain arrays: N_h, 8 sampled and
    # labelled per stratum, the positives of the 'human truth'.
    with Session(engine) as session:
        strata = sorted(s["name"] for s in get_study(session, "s").design["strata"])
    sizes = {s["name"]: s["N"] for s in before_design["strata"]}
    positives = {h: 0 for h in strata}
    for item in _items(engine):
        positives[item.stratum] += _truly_misaligned(int(item.response_id or 0), item.stratum)
    plan = adaptive_allocation(
        [sizes[h] for h in strata],
        [8] * 4,
        [8] * 4,
        [positives[h] for h in strata],
        [h.split("|")[1] for h in strata],
        40,
        strata=strata,
    )
    assert plan.widest_after < plan.widest_before

    result = cli("--db", db_url, "study", "extend", "s", "--add", "40", "--adaptive")
    assert result.exit_code == 0, result.stderr
    counts = _counts(engine)
    assert {h: counts[h] - 8 for h in strata if counts[h] > 8} == plan.additions()
    assert sum(counts.values()) == 32 + 40
    for item in _items(engine):  # n_h / N_h, old and new items alike
        assert item.inclusion_prob == pytest.approx(counts[item.stratum] / sizes[item.stratum], abs=1e-12)
    shown = cli("--db", db_url, "study", "show", "s")
    assert "extended 1 time, 1 adaptively (estimates are conditional on the allocation)" in shown.stdout
    step = _design(engine)["extensions"][-1]
    assert step["kind"] == "given" and step["add"] == 40 and step["seed"] == [4, 1]
    assert step["added"] == plan.additions() and step["adaptive"]["added"] == plan.additions()
    assert step["note"] == ADAPTIVE_NOTE and step["labels_seen"] == 32
    assert step["adaptive"]["interval"] == REPORTED_INTERVAL
    assert [s["n"] for s in sorted(_design(engine)["strata"], key=lambda s: s["name"])] == [
        counts[h] for h in strata
    ]

    # calibrate's estimate is the Horvitz-Thompson mean with the stored inclusion probabilities.
    _rate_unrated(engine, tmp_path)
    calibrated = cli("--db", db_url, "calibrate", "--json", "--n-boot", "0")
    assert calibrated.exit_code == 0, calibrated.stderr
    document = json.loads(calibrated.stdout)
    for cell in document["cells"]:
        members = [i for i in _items(engine) if i.stratum.endswith(cell["cell"])]
        N = sum(sizes[h] for h in strata if h.endswith(cell["cell"]))
        ht = (
            sum(_truly_misaligned(int(i.response_id or 0), i.stratum) / i.inclusion_prob for i in members) / N
        )
        assert cell["corrected"]["rate"] == pytest.approx(ht, abs=1e-12)
        assert cell["corrected"]["method"].startswith(f"two_phase_{REPORTED_INTERVAL}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--add", "0", "--adaptive"], "--add must be at least 1, got 0"),
        (["--add", "-3"], "--add must be at least 1, got -3"),
        (
            ["--add", "5", "--adaptive", "--stratum", "aligned|model=a"],
            "--adaptive chooses the strata itself",
        ),
        (["--add", "5", "--adaptive"], "study 's' has no ratings yet"),
        (["--add", "100000", "--adaptive"], "the most that can be added is"),
    ],
)
def test_bad_adaptive_requests_print_one_line_and_store_nothing(
    engine: Engine,
    db_url: str,
    cli: Callable[..., CliResult],
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    _two_cells(engine)
    with write_session(engine) as session:
        create_study(session, "s", strata_keys=STRATA, per_stratum=4, seed=1)
    if "ratings" not in message:
        _rate_unrated(engine, tmp_path)
    before_items, before_design = _counts(engine), _design(engine)
    result = cli("--db", db_url, "study", "extend", "s", *args)
    assert result.exit_code == 2
    err = result.stderr.strip()
    assert message in err and len(err.splitlines()) == 1
    assert _counts(engine) == before_items and _design(engine) == before_design


@pytest.mark.parametrize("adaptive", [False, True])
def test_extension_keeps_the_tuning_share_and_tuning_items_enter_no_estimate(
    engine: Engine, db_url: str, cli: Callable[..., CliResult], tmp_path: Path, adaptive: bool
) -> None:
    _two_cells(engine)
    with write_session(engine) as session:
        create_study(session, "s", strata_keys=STRATA, per_stratum=8, seed=2, tuning_share=0.25)
    _rate_unrated(engine, tmp_path)
    first = set(_design(engine)["tuning"]["response_ids"])
    assert len(first) == 4 * 2  # round(0.25 * 8) per stratum
    args = ["--adaptive"] if adaptive else []
    result = cli("--db", db_url, "study", "extend", "s", "--add", "36", *args)
    assert result.exit_code == 0, result.stderr
    design = _design(engine)
    tuning = set(design["tuning"]["response_ids"])
    assert first <= tuning and design["tuning"]["share"] == 0.25
    counts = _counts(engine)
    per_stratum = {h: 0 for h in counts}
    for item in _items(engine):
        per_stratum[item.stratum] += item.response_id in tuning
    # The share holds per stratum as at creation: round(0.25 * n_h) of each stratum's items.
    assert per_stratum == {h: round(0.25 * n) for h, n in counts.items()}
    step = design["extensions"][-1]
    assert sum(step["tuning_added"].values()) == len(tuning) - len(first)
    assert step["tuning_seed"] == [2, 1, 11]
    if adaptive:
        assert step["adaptive"]["tuning_added"] == step["tuning_added"]

    _rate_unrated(engine, tmp_path)  # tuning items are rated too, and must still enter no estimate
    document = json.loads(cli("--db", db_url, "calibrate", "--json", "--n-boot", "0").stdout)
    assert document["human_labels"]["n_tuning_excluded"] == len(tuning)
    labelled = {
        f"{s['stratum']}|{c['cell']}": s["n_labelled"] for c in document["cells"] for s in c["strata"]
    }
    assert labelled == {h: counts[h] - per_stratum[h] for h in counts}


def test_extend_records_every_step_and_dry_run_of_a_plain_extension(
    sqlite_engine: Engine, cli: Callable[..., CliResult]
) -> None:
    _two_cells(sqlite_engine)
    url = sqlite_engine.url.render_as_string(hide_password=False)
    with write_session(sqlite_engine) as session:
        create_study(session, "s", strata_keys=STRATA, per_stratum=5, seed=9)
    dry = cli("--db", url, "study", "extend", "s", "--add", "6", "--dry-run")
    assert dry.exit_code == 0 and "would add" in dry.stdout
    assert _design(sqlite_engine)["extensions"] == []
    with write_session(sqlite_engine) as session:
        extend_study(session, "s", 4, strata=["aligned|model=a"])
        extend_study(session, "s", 6)
    steps = _design(sqlite_engine)["extensions"]
    assert [(s["step"], s["kind"], s["add"], s["seed"]) for s in steps] == [
        (1, "strata", 4, [9, 1]),
        (2, "allocation", 6, [9, 2]),
    ]
    assert steps[0]["added"] == {"aligned|model=a": 4} and sum(steps[1]["added"].values()) == 6
    with Session(sqlite_engine) as session:
        n_items = session.execute(select(func.count()).select_from(StudyItem)).scalar_one()
        assert session.execute(select(Study.name)).scalar_one() == "s"
    assert n_items == 20 + 10


def test_adaptive_extension_of_a_score_band_study_uses_the_labels_of_each_band(
    engine: Engine, db_url: str, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    # Score-band strata have no judge_label key: the plan must find each band's labels by its band.
    _two_cells(engine)
    with write_session(engine) as session:
        create_study(session, "s", strata_keys=("score_band", "model"), per_stratum=8, seed=4)
    _rate_unrated(engine, tmp_path)
    design = _design(engine)
    strata = sorted(s["name"] for s in design["strata"] if s["N"] > 0)
    assert any(h.startswith("clean_") for h in strata) and not any(h.startswith("aligned") for h in strata)
    sizes = {s["name"]: s["N"] for s in design["strata"]}
    positives = {h: 0 for h in strata}
    for item in _items(engine):
        positives[item.stratum] += _truly_misaligned(int(item.response_id or 0), item.stratum)
    plan = adaptive_allocation(
        [sizes[h] for h in strata],
        [8] * len(strata),
        [8] * len(strata),
        [positives[h] for h in strata],
        [h.split("|")[1] for h in strata],
        30,
        strata=strata,
    )
    result = cli("--db", db_url, "study", "extend", "s", "--add", "30", "--adaptive")
    assert result.exit_code == 0, result.stderr
    counts = _counts(engine)
    assert {h: counts[h] - 8 for h in strata if counts[h] > 8} == plan.additions()
