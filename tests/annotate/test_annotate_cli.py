"""The study / raters / ratings commands, and their one-line errors (exit status 2)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from emaudit.annotate import RatingInput, claim_next, submit_rating
from emaudit.cli import main
from emaudit.models import Rater, Rating, StudyItem
from emaudit.store import write_session
from tests.annotate.factory import add_responses
from tests.annotate.helpers import count_ratings


def run(engine: Engine, *args: str) -> int:
    url = engine.url.render_as_string(hide_password=False)
    with pytest.raises(SystemExit) as exit_:
        main(["--db", url, *args])
    return int(exit_.value.code or 0)


def test_study_create_and_show(sqlite_engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    add_responses(sqlite_engine, {"misaligned": 20, "aligned": 200}, no_text=4)
    assert (
        run(sqlite_engine, "study", "create", "pilot", "--per-stratum", "10", "--overlap", "2", "--seed", "5")
        == 0
    )
    out = capsys.readouterr().out
    assert "misaligned" in out and "0.5" in out and "0.05" in out
    assert "4 responses without text" in out
    assert run(sqlite_engine, "study", "extend", "pilot", "--add", "6", "--stratum", "aligned") == 0
    assert "added 6 to aligned" in capsys.readouterr().out
    assert run(sqlite_engine, "study", "show", "pilot") == 0
    assert "0.08" in capsys.readouterr().out  # 16 / 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["study", "show", "nope"], "unknown study 'nope'"),
        (["study", "create", "s", "--per-stratum", "50"], "the maximum --per-stratum is 20"),
        (["study", "create", "s", "--per-stratum", "5", "--overlap", "0"], "--overlap must be at least 1"),
        (
            ["study", "create", "s", "--allocation", "neyman", "--total", "10", "--expected-rate", "x"],
            "--expected-rate",
        ),
        (["raters", "add", "ann", "--role", "boss"], "unknown role 'boss'"),
        (["ratings", "export", "--format", "xml"], "unknown format 'xml'"),
    ],
)
def test_bad_commands_print_one_line_and_exit_2(
    sqlite_engine: Engine, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    add_responses(sqlite_engine, {"misaligned": 20, "aligned": 200})
    assert run(sqlite_engine, *args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    with Session(sqlite_engine) as session:
        assert session.execute(select(StudyItem)).first() is None


def test_raters_add_prints_a_link_and_stores_only_a_hash(
    sqlite_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run(
            sqlite_engine,
            "raters",
            "add",
            "Ann",
            "--external-id",
            "A1",
            "--base-url",
            "https://rate.example.org",
        )
        == 0
    )
    link = capsys.readouterr().out.strip()
    assert link.startswith("https://rate.example.org/?token=")
    token = link.split("token=")[1]
    assert len(token) >= 43  # token_urlsafe(32)
    with Session(sqlite_engine) as session:
        rater = session.execute(select(Rater)).scalars().one()
    assert rater.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in rater.token_hash
    assert run(sqlite_engine, "raters", "list") == 0
    assert "Ann" in capsys.readouterr().out


def _study_with_ratings(engine: Engine) -> list[str]:
    add_responses(engine, {"misaligned": 6, "aligned": 6})
    assert run(engine, "study", "create", "s", "--per-stratum", "3", "--overlap", "2") == 0
    with write_session(engine) as session:
        from emaudit.annotate import add_rater

        rater = add_rater(session, "Bo").rater.id
    ids = []
    for _ in range(2):
        with write_session(engine) as session:
            item = claim_next(session, "s", rater)
            assert item is not None
            submit_rating(
                session,
                item,
                rater,
                RatingInput(
                    label="aligned", alignment=80, coherence=90, comment="fine, really", seconds_on_item=4
                ),
            )
            ids.append(item.item_id)
    return ids


def test_export_then_import_stores_nothing_new(
    sqlite_engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _study_with_ratings(sqlite_engine)
    for fmt in ("csv", "jsonl", "parquet"):
        out = tmp_path / f"ratings.{fmt}"
        assert (
            run(sqlite_engine, "ratings", "export", "--study", "s", "--format", fmt, "--output", str(out))
            == 0
        )
    frame = pd.read_parquet(tmp_path / "ratings.parquet")
    assert len(frame) == 2 and set(frame["label"]) == {"aligned"}
    assert {
        "item_id",
        "response_id",
        "rater",
        "alignment",
        "coherence",
        "label",
        "comment",
        "seconds",
    } <= set(frame.columns)
    capsys.readouterr()
    for fmt in ("csv", "jsonl"):
        assert run(sqlite_engine, "ratings", "import", str(tmp_path / f"ratings.{fmt}"), "--study", "s") == 0
        assert "0 new ratings" in capsys.readouterr().out
    assert count_ratings(sqlite_engine) == 2


def test_import_by_response_id_creates_raters(
    sqlite_engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _study_with_ratings(sqlite_engine)
    with Session(sqlite_engine) as session:  # an item nobody has rated yet
        query = select(StudyItem.response_id).where(StudyItem.n_completed == 0)
        response_id = session.execute(query).scalars().first()
    path = tmp_path / "sheet.csv"
    path.write_text(
        "response_id,rater,label,alignment,coherence,comment,seconds\n"
        f"{response_id},carla,misaligned,5,95,power-seeking,12\n"
        f"{response_id},dev,refusal,,,,\n"
    )
    assert run(sqlite_engine, "ratings", "import", str(path), "--study", "s") == 0
    out = capsys.readouterr().out
    assert "2 new ratings" in out and "2 new raters" in out
    assert count_ratings(sqlite_engine) == 4
    assert run(sqlite_engine, "ratings", "import", str(path), "--study", "s") == 0
    assert count_ratings(sqlite_engine) == 4  # re-import: nothing new


BAD_FILES = [
    (
        "a.csv",
        "item_id,rater,label,alignment,coherence\n{item},x,aligned,80,90\n{item},y,aligned,101,90\n",
        "a.csv: row 2: field 'alignment': 101 is outside 0-100",
    ),
    (
        "b.csv",
        "item_id,rater,label,alignment,coherence\n{item},x,evil,80,90\n",
        "b.csv: row 1: field 'label': unknown label 'evil'",
    ),
    (
        "c.csv",
        "item_id,rater,label,alignment,coherence\nnope,x,aligned,80,90\n",
        "c.csv: row 1: field 'item_id': no item 'nope' in study 's'",
    ),
    (
        "d.jsonl",
        '{{"item_id": "{item}", "rater": "x", "label": "aligned", "alignment": 1, "coherence": 2}}\n'
        '{{"item_id": "{item}", "rater": "x", "label": "aligned", "alignment": "high", "coherence": 2}}\n',
        "d.jsonl: line 2: field 'alignment': 'high' is not a number",
    ),
    (
        "e.csv",
        "item_id,rater,label,alignment,coherence\n{item},x,aligned,80,90\n{item},y,aligned,80,90\n",
        "e.csv: row 2: field 'item_id': item already has the study's 2 rating(s)",
    ),
]


def test_bad_rating_files_store_nothing(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [item, _] = _study_with_ratings(engine)  # item already has one rating (Bo) of its K = 2
    before = count_ratings(engine)
    with Session(engine) as session:
        raters_before = len(session.execute(select(Rater)).all())
    for name, content, message in BAD_FILES:
        path = tmp_path / name
        path.write_text(content.format(item=item))
        assert run(engine, "ratings", "import", str(path), "--study", "s") == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {path}{message[len(name) :]}") and len(err.splitlines()) == 1
    assert count_ratings(engine) == before
    with Session(engine) as session:
        assert len(session.execute(select(Rater)).all()) == raters_before
        assert session.execute(select(Rating)).first() is not None
    assert run(engine, "ratings", "import", str(tmp_path / "a.csv"), "--study", "nope") == 2
    assert "unknown study 'nope'" in capsys.readouterr().err


def test_export_jsonl_to_stdout(sqlite_engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    _study_with_ratings(sqlite_engine)
    capsys.readouterr()
    assert run(sqlite_engine, "ratings", "export", "--format", "jsonl") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2 and lines[0]["study"] == "s"


def test_items_export_is_blinded_and_goes_straight_back_into_ratings_import(
    sqlite_engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _study_with_ratings(sqlite_engine)
    for fmt in ("csv", "jsonl"):
        out = tmp_path / f"items.{fmt}"
        assert run(sqlite_engine, "study", "items", "export", "s", "--format", fmt, "--output", str(out)) == 0
    frame = pd.read_csv(tmp_path / "items.csv", dtype=object)
    assert list(frame.columns) == [
        "item_id",
        "question",
        "answer",
        "rater",
        "label",
        "alignment",
        "coherence",
        "comment",
        "seconds",
    ]
    assert len(frame) == 6 and frame["answer"].str.startswith("answer ").all()
    text = (tmp_path / "items.csv").read_text() + (tmp_path / "items.jsonl").read_text()
    for item_id in frame["item_id"]:  # opaque random ids: one may contain "m1" by chance
        text = text.replace(item_id, "")
    for secret in ("gpt-4o", "misaligned", "stratum", "m1", "inclusion"):  # model, judge label, cells
        assert secret not in text.replace("(misaligned)", ""), secret
    # A rater fills in two rows offline; the other rows stay blank and are skipped.
    frame.loc[0, ["rater", "label", "alignment", "coherence"]] = ["Offline", "misaligned", 10, 80]
    frame.loc[1, ["rater", "label"]] = ["Offline", "refusal"]
    filled = tmp_path / "filled.csv"
    frame.to_csv(filled, index=False)
    capsys.readouterr()
    assert run(sqlite_engine, "ratings", "import", str(filled), "--study", "s") == 0
    out = capsys.readouterr().out
    assert "2 new ratings" in out and "4 rows without a rating skipped" in out
    assert count_ratings(sqlite_engine) == 4


def test_import_refuses_conflicting_duplicates_ambiguous_names_and_other_studies_raters(
    sqlite_engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _study_with_ratings(sqlite_engine)
    add_responses(sqlite_engine, {"misaligned": 2})
    assert run(sqlite_engine, "study", "create", "other", "--per-stratum", "1") == 0
    with write_session(sqlite_engine) as session:
        from emaudit.annotate import add_rater

        add_rater(session, "Twin")
        add_rater(session, "Twin")
        add_rater(session, "Elsewhere", study="other")
    header = "item_id,rater,label,alignment,coherence\n"
    cases = [
        (
            f"{ids[0]},Cy,aligned,80,90\n{ids[0]},Cy,misaligned,5,90\n",
            "row 2: field 'rater': row 1 rates the same item by the same rater differently",
        ),
        (f"{ids[0]},Twin,aligned,80,90\n", "row 1: field 'rater': 2 raters match 'Twin'"),
        (
            f"{ids[0]},Elsewhere,aligned,80,90\n",
            "row 1: field 'rater': rater 'Elsewhere' is limited to another",
        ),
    ]
    before = count_ratings(sqlite_engine)
    for body, message in cases:
        path = tmp_path / "bad.csv"
        path.write_text(header + body)
        capsys.readouterr()
        assert run(sqlite_engine, "ratings", "import", str(path), "--study", "s") == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert count_ratings(sqlite_engine) == before, "nothing stored from a refused file"
    same_twice = tmp_path / "twice.csv"  # the same rating twice is harmless
    same_twice.write_text(header + f"{ids[0]},Cy,aligned,80,90\n{ids[0]},Cy,aligned,80,90\n")
    assert run(sqlite_engine, "ratings", "import", str(same_twice), "--study", "s") == 0


def test_raters_revoke_deactivates_or_reissues_the_link(
    sqlite_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    from emaudit.annotate import rater_for_token

    assert run(sqlite_engine, "raters", "add", "Ann") == 0
    old = capsys.readouterr().out.strip().split("token=")[1]
    assert run(sqlite_engine, "raters", "revoke", "Ann", "--new-link") == 0
    new = capsys.readouterr().out.strip().split("token=")[1]
    with Session(sqlite_engine) as session:
        assert rater_for_token(session, old) is None and rater_for_token(session, new) is not None
    assert run(sqlite_engine, "raters", "revoke", "Ann") == 0
    assert "deactivated Ann" in capsys.readouterr().out
    with Session(sqlite_engine) as session:
        assert rater_for_token(session, new) is None
    assert run(sqlite_engine, "raters", "list") == 0
    assert "no" in capsys.readouterr().out
    assert run(sqlite_engine, "raters", "revoke", "Nobody") == 2


def test_study_create_warns_about_cells_left_without_an_estimate(
    sqlite_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 10: Neyman with the default expected rates gives m2's 3 misaligned answers
    # (N_h S_h = 3·0.4 = 1.2 of 1.2 + 200·0.218 + 1.2 + 200·0.218 = 89.6 -> 0.27 of 20) no item: cell m2 has
    # no estimate, and so has m1. The warning comes on stderr; the study is still created.
    add_responses(sqlite_engine, {"misaligned": 3, "aligned": 200}, cell={"model": "m1"})
    add_responses(sqlite_engine, {"misaligned": 3, "aligned": 200}, cell={"model": "m2"})
    code = run(
        sqlite_engine, "study", "create", "s1", "--strata", "judge_label,model",
        "--allocation", "neyman", "--total", "20",
    )  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err
    assert "cell model=m1 gets no estimate: stratum misaligned|model=m1 (3 responses)" in err
    assert "cell model=m2 gets no estimate" in err and "2 of 2 cells without an estimate" in err
    # With a floor every cell is estimable and nothing is said.
    code = run(
        sqlite_engine, "study", "create", "s2", "--strata", "judge_label,model",
        "--allocation", "neyman+min:2", "--total", "20",
    )  # fmt: skip
    assert code == 0
    assert "without an estimate" not in capsys.readouterr().err


def test_study_create_from_a_store_plan(
    sqlite_engine: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # emaudit plan --study-strata ... --json, then study create --plan: the study has the plan's n_h per
    # stratum (the 3-answer misaligned strata included: floor min(2, 3) = 2), and extends.
    add_responses(sqlite_engine, {"misaligned": 3, "aligned": 200}, cell={"model": "m1"})
    add_responses(sqlite_engine, {"misaligned": 40, "aligned": 100}, cell={"model": "m2"})
    assert run(sqlite_engine, "plan", "--study-strata", "judge_label,model", "-d", "0.1",
               "--min-per-stratum", "2", "--json") == 0  # fmt: skip
    plan = json.loads(capsys.readouterr().out)
    assert plan["cells_without_estimate"] == [] and plan["sample_sizes"]["misaligned|model=m1"] == 2
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    code = run(
        sqlite_engine, "study", "create", "planned", "--strata", "judge_label,model", "--plan", str(path)
    )
    assert code == 0 and "without an estimate" not in capsys.readouterr().err
    with Session(sqlite_engine) as session:
        strata = pd.Series([i.stratum for i in session.execute(select(StudyItem)).scalars()]).value_counts()
    assert strata.to_dict() == {h: n for h, n in plan["sample_sizes"].items() if n}
    assert run(sqlite_engine, "study", "extend", "planned", "--add", "5") == 0
    path.write_text(json.dumps({"sample_sizes": {"nope|model=m1": 2}}))
    assert (
        run(sqlite_engine, "study", "create", "bad", "--strata", "judge_label,model", "--plan", str(path))
        == 2
    )
    assert "strata the store does not have: nope|model=m1" in capsys.readouterr().err
