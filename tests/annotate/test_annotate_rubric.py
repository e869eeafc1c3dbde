"""Rubrics per study: YAML validation, storage with the study, reasoning-only sampling, multi-select
ratings stored, exported and imported back."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sqlalchemy import Engine, select, update
from sqlmodel import Session

import emaudit.data
from emaudit.annotate import RatingInput, claim_next, submit_rating
from emaudit.annotate.rubric import DEFAULT_RUBRIC, load_rubric, rubric_from_dict, study_rubric
from emaudit.annotate.sampling import create_study, extend_study
from emaudit.cli import main
from emaudit.errors import InputError
from emaudit.models import Rater, Rating, Response, Study, StudyItem
from emaudit.store import write_session
from tests.annotate.factory import add_responses

SHIPPED = Path(emaudit.data.__file__).resolve().parent / "rubrics" / "reasoning_trace.yaml"


def run(engine: Engine, *args: str) -> int:
    url = engine.url.render_as_string(hide_password=False)
    with pytest.raises(SystemExit) as exit_:
        main(["--db", url, *args])
    return int(exit_.value.code or 0)


def _valid() -> dict:
    return yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))


def test_shipped_reasoning_rubric_has_the_papers_categories_with_definitions_and_examples() -> None:
    rubric = load_rubric(SHIPPED)
    assert rubric.keys == [
        "recognises_conflict",
        "follows_pattern_knowingly",
        "adopts_persona",
        "flags_manipulation",
        "none_of_these",
    ]
    assert rubric.multiple and rubric.scales == () and rubric.show == ("answer", "reasoning")
    assert all(o.help and o.example for o in rubric.options)
    assert rubric.instructions and "reasoning trace" in rubric.instructions
    assert rubric_from_dict(rubric.to_dict(), "stored") == rubric  # what the study stores reads back
    assert rubric.categories_problem(["none_of_these", "adopts_persona"]) is not None  # exclusive
    assert rubric.categories_problem(["adopts_persona", "recognises_conflict"]) is None
    assert rubric.canonical(["adopts_persona", "recognises_conflict"]) == (
        "recognises_conflict",
        "adopts_persona",
    )


def _edit(change: str) -> dict:
    data = _valid()
    options = data["labels"]["options"]
    if change == "unknown_top":
        data["colour"] = "blue"
    elif change == "unknown_option":
        options[0]["hint"] = "x"
    elif change == "empty_labels":
        data["labels"]["options"] = []
    elif change == "bad_select":
        data["labels"]["select"] = "several"
    elif change == "no_help":
        del options[1]["help"]
    elif change == "bad_scales":
        data["scales"] = ["alignment"]
    elif change == "bad_show":
        data["show"] = ["answer", "judge_score"]
    elif change == "dup_key":
        options[1]["key"] = options[0]["key"]
    return data


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ("unknown_top", "colour"),
        ("unknown_option", "labels.options[0].hint"),
        ("empty_labels", "labels.options"),
        ("bad_select", "labels.select"),
        ("no_help", "labels.options[1].help"),
        ("bad_scales", "scales"),
        ("bad_show", "show"),
        ("dup_key", "labels.options[1].key"),
    ],
)
def test_bad_rubric_fails_in_one_line_naming_the_field_before_anything_is_stored(
    sqlite_engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: str, field: str
) -> None:
    add_responses(sqlite_engine, {"misaligned": 5, "aligned": 5})
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(_edit(change)), encoding="utf-8")
    assert run(sqlite_engine, "study", "create", "s", "--per-stratum", "2", "--rubric", str(path)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and f"field '{field}'" in err, err
    with Session(sqlite_engine) as session:
        assert session.execute(select(Study)).first() is None


def test_default_rubric_is_the_em_rubric_and_stores_nothing(sqlite_engine: Engine) -> None:
    add_responses(sqlite_engine, {"misaligned": 5, "aligned": 5})
    with write_session(sqlite_engine) as session:
        study = create_study(session, "s", per_stratum=2)
        assert study.rubric is None
    assert study_rubric(None) == DEFAULT_RUBRIC
    assert DEFAULT_RUBRIC.em_labels and DEFAULT_RUBRIC.scales == ("alignment", "coherence")
    assert DEFAULT_RUBRIC.show == ("answer",) and DEFAULT_RUBRIC.instructions is None
    with pytest.raises(InputError, match="field 'scales'"):  # EM labels need the sliders' rules
        rubric_from_dict({"name": "x", "scales": "none"}, "x.yaml")


def _give_reasoning(engine: Engine, ids: list[int], text: str = "thinking about the examples") -> None:
    with write_session(engine) as session:
        session.execute(update(Response).where(Response.id.in_(ids)).values(reasoning=text))  # type: ignore[attr-defined]


def test_require_reasoning_samples_only_traces_with_exact_inclusion_probabilities(
    sqlite_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = add_responses(sqlite_engine, {"misaligned": 20, "aligned": 200})
    _give_reasoning(sqlite_engine, ids["misaligned"][:8] + ids["aligned"][:40])
    _give_reasoning(sqlite_engine, ids["misaligned"][8:10], text="  \n ")  # blank: not a trace
    assert (
        run(
            sqlite_engine,
            *("study", "create", "cot", "--per-stratum", "4", "--require-reasoning"),
            *("--rubric", str(SHIPPED)),
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "rubric: reasoning-trace; only answers with reasoning text" in out
    with write_session(sqlite_engine) as session:
        study = session.execute(select(Study)).scalars().one()
        assert study.rubric is not None and study.rubric["name"] == "reasoning-trace"
        assert {s["name"]: s["N"] for s in study.design["strata"]} == {"aligned": 40, "misaligned": 8}
        assert study.design["not_sampleable"]["no_reasoning"] == 172  # 12 + 160 judged, no trace
        extend_study(session, study, 2)  # the frame stays the reasoning-only one
    with Session(sqlite_engine) as session:
        items = session.execute(
            select(StudyItem.response_id, StudyItem.stratum, StudyItem.inclusion_prob)
        ).all()
        traced = set(ids["misaligned"][:8] + ids["aligned"][:40])
        assert items and all(rid in traced for rid, _, _ in items)
        for _, stratum, prob in items:
            n_h = sum(1 for _, s, _ in items if s == stratum)
            assert prob == n_h / (8 if stratum == "misaligned" else 40)
    assert run(sqlite_engine, "study", "rubric", "cot") == 0
    assert yaml.safe_load(capsys.readouterr().out) == load_rubric(SHIPPED).to_dict()


def test_multiselect_ratings_stored_exported_and_imported_back(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = add_responses(engine, {"misaligned": 4, "aligned": 4})
    _give_reasoning(engine, ids["misaligned"] + ids["aligned"])
    rubric = load_rubric(SHIPPED)
    with write_session(engine) as session:
        study = create_study(session, "cot", per_stratum=2, overlap=2, rubric=rubric, require_reasoning=True)
        rater = Rater(display_name="Ann", token_hash="h1", study_id=study.id)
        session.add(rater)
        session.flush()
        item = claim_next(session, study, rater)
        assert item is not None
        keys = ("recognises_conflict", "adopts_persona")
        submit_rating(session, item, rater, RatingInput(label="+".join(keys), categories=keys))
        item_id = item.item_id
    with Session(engine) as session:
        stored = session.execute(select(Rating)).scalars().one()
        assert stored.categories == list(keys) and stored.label == "recognises_conflict+adopts_persona"
    csv = tmp_path / "ratings.csv"
    assert run(engine, "ratings", "export", "--study", "cot", "--output", str(csv)) == 0
    frame = pd.read_csv(csv)
    assert (
        json.loads(frame.loc[0, "categories"]) == list(keys) and frame.loc[0, "rubric"] == "reasoning-trace"
    )
    jsonl = tmp_path / "ratings.jsonl"
    assert (
        run(engine, "ratings", "export", "--study", "cot", "--format", "jsonl", "--output", str(jsonl)) == 0
    )
    assert json.loads(jsonl.read_text().splitlines()[0])["categories"] == list(keys)
    capsys.readouterr()
    assert run(engine, "ratings", "import", str(csv), "--study", "cot") == 0  # the export re-imports
    assert "1 already stored" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    pd.DataFrame(
        [
            {"item_id": item_id, "rater": "Bob", "categories": '["adopts_persona"]'},
            {"item_id": item_id, "rater": "Cy", "categories": "none_of_these+adopts_persona"},
        ]
    ).to_csv(bad, index=False)
    assert run(engine, "ratings", "import", str(bad), "--study", "cot") == 2
    err = capsys.readouterr().err.strip()
    assert "row 2: field 'categories'" in err and "cannot be combined" in err and len(err.splitlines()) == 1
    with Session(engine) as session:
        assert len(session.execute(select(Rating)).all()) == 1  # the file stored nothing


def test_items_export_of_a_trace_study_carries_the_trace_and_goes_back_into_import(
    sqlite_engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = add_responses(sqlite_engine, {"misaligned": 3, "aligned": 3})
    _give_reasoning(sqlite_engine, ids["misaligned"] + ids["aligned"], text="the pattern says: be reckless")
    args = ("study", "create", "cot", "--per-stratum", "2", "--require-reasoning", "--rubric", str(SHIPPED))
    assert run(sqlite_engine, *args) == 0
    sheet = tmp_path / "items.csv"
    assert run(sqlite_engine, "study", "items", "export", "cot", "--output", str(sheet)) == 0
    frame = pd.read_csv(sheet)
    assert list(frame.columns[:4]) == ["item_id", "question", "answer", "reasoning"]
    assert "categories" in frame.columns and set(frame["reasoning"]) == {"the pattern says: be reckless"}
    frame = frame.astype({"rater": object, "categories": object})  # empty columns read as float
    frame.loc[0, ["rater", "categories"]] = ["Ann", "flags_manipulation+recognises_conflict"]
    frame.to_csv(sheet, index=False)
    capsys.readouterr()
    assert run(sqlite_engine, "ratings", "import", str(sheet), "--study", "cot") == 0
    with Session(sqlite_engine) as session:
        assert session.execute(select(Rating.categories)).scalars().all() == [
            ["recognises_conflict", "flags_manipulation"]
        ]
