"""`emaudit calibrate` on a real study in the store: the adapter feeds the estimators the right counts."""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import Engine, select
from sqlmodel import Session

from emaudit.annotate import RatingInput, add_rater, claim_next, create_study, submit_rating
from emaudit.calibration import two_phase_rate
from emaudit.models import StudyItem
from emaudit.store import write_session
from tests.annotate.factory import add_responses
from tests.calibration.test_calibration_questions import QWEN
from tests.conftest import CliResult, requires_shared


def _truly_misaligned(response_id: int, judge_stratum: str) -> bool:
    """The 'human truth': 4 in 5 judge-misaligned answers are misaligned, 1 in 10 judge-aligned are."""
    if judge_stratum == "misaligned":
        return response_id % 5 != 0
    return judge_stratum == "aligned" and response_id % 10 == 0


def _rate_everything(engine: Engine, study: str, raters: list[int], strata: dict[int, str]) -> None:
    for rater in raters:
        while True:
            with write_session(engine) as session:
                item = claim_next(session, study, rater)
            if item is None:
                break
            with Session(engine) as session:
                response_id = session.execute(
                    select(StudyItem.response_id).where(StudyItem.public_id == item.item_id)
                ).scalar_one()
            misaligned = _truly_misaligned(response_id, strata[response_id])
            rating = RatingInput(
                label="misaligned" if misaligned else "aligned",
                alignment=10 if misaligned else 90,
                coherence=90,
            )
            with write_session(engine) as session:
                submit_rating(session, item, rater, rating)


def test_calibrate_reports_the_two_phase_estimate_of_the_study(
    engine: Engine, db_url: str, cli: Callable[..., CliResult]
) -> None:
    ids = add_responses(engine, {"misaligned": 40, "aligned": 200, "incoherent": 20, "null": 10})
    strata = {rid: stratum for stratum, rids in ids.items() for rid in rids}
    with write_session(engine) as session:
        create_study(session, "audit", strata_keys=("judge_label",), per_stratum=10, overlap=2, seed=3)
        raters = [add_rater(session, f"r{i}").rater.id for i in range(2)]
    _rate_everything(engine, "audit", [r for r in raters if r is not None], strata)

    result = cli("--db", db_url, "calibrate", "--json", "--n-boot", "200")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    (cell,) = document["cells"]
    assert cell["n_judged"] == 270
    assert cell["judge_rate"] == 40 / 270

    with Session(engine) as session:
        items = session.execute(select(StudyItem.response_id, StudyItem.stratum)).all()
    n = {s: sum(1 for _, h in items if h == s) for s in ("misaligned", "aligned", "incoherent", "null")}
    x = {s: sum(_truly_misaligned(rid, h) for rid, h in items if h == s) for s in n}
    N = {"misaligned": 40, "aligned": 200, "incoherent": 20, "null": 10}
    order = sorted(N)
    expected = two_phase_rate([N[s] for s in order], [n[s] for s in order], [x[s] for s in order])
    # the point estimate by hand: sum_h N_h/N * x_h/n_h
    assert abs(expected.rate - sum(N[s] / 270 * x[s] / n[s] for s in order)) < 1e-12
    corrected = cell["corrected"]
    assert (corrected["rate"], corrected["low"], corrected["high"]) == (
        expected.rate,
        expected.low,
        expected.high,
    )
    assert {s["stratum"]: (s["N"], s["n_labelled"], s["n_positive"]) for s in cell["strata"]} == {
        s: (N[s], n[s], x[s]) for s in order
    }
    # two raters who always agree
    assert document["agreement"]["human_human"]["percent_agreement"]["value"] == 1.0

    table = cli("--db", db_url, "calibrate")
    assert table.exit_code == 0, table.stderr
    assert "corrected" in table.stdout and "overall" in table.stdout


def test_calibrate_needs_a_judge_stratified_study(
    engine: Engine, db_url: str, cli: Callable[..., CliResult]
) -> None:
    assert cli("--db", db_url, "calibrate").stderr.strip() == (
        "error: no study in the store: create one with 'emaudit study create'"
    )
    add_responses(engine, {"misaligned": 5, "aligned": 5}, cell={"model": "m1"})
    add_responses(engine, {"misaligned": 5, "aligned": 5}, cell={"model": "m2"})
    with write_session(engine) as session:
        create_study(session, "by-model", strata_keys=("model",), per_stratum=2)
        create_study(session, "other", strata_keys=("judge_label",), per_stratum=2, seed=1)
    result = cli("--db", db_url, "calibrate")
    assert result.exit_code == 2 and "several studies (by-model, other): pass --study" in result.stderr
    result = cli("--db", db_url, "calibrate", "--study", "by-model")
    assert result.exit_code == 2 and "not stratified by the judge's label" in result.stderr
    result = cli("--db", db_url, "calibrate", "--study", "nope")
    assert result.exit_code == 2 and "unknown study 'nope'" in result.stderr


@requires_shared
def test_calibrate_questions_estimand_on_imported_reference_answers(
    sqlite_url: str, cli: Callable[..., CliResult]
) -> None:
    """8 questions x 50 answers (Qwen2.5-14B bad medical advice): the store adapter splits the phase-1
    population by question, so calibrate reports the questions interval, G = 8 and per-question rates."""
    from emaudit.store import make_engine

    assert cli("--db", sqlite_url, "init").exit_code == 0
    assert (
        cli(
            "--db", sqlite_url, "responses", "import", "--add-questions", str(QWEN), "--model", "qwen14b"
        ).exit_code
        == 0
    )
    engine = make_engine(sqlite_url)
    with write_session(engine) as session:
        create_study(
            session, "audit", strata_keys=("judge_label",), allocation="min:4", total=48, overlap=2, seed=5
        )
        raters = [add_rater(session, f"r{i}").rater.id for i in range(2)]
    for rater in raters:
        assert rater is not None
        while True:
            with write_session(engine) as session:
                item = claim_next(session, "audit", rater)
            if item is None:
                break
            with Session(engine) as session:
                stratum = session.execute(
                    select(StudyItem.stratum).where(StudyItem.public_id == item.item_id)
                ).scalar_one()
            label = "misaligned" if stratum == "misaligned" else "aligned"
            with write_session(engine) as session:
                submit_rating(session, item, rater, RatingInput(label=label, alignment=50, coherence=90))
    engine.dispose()
    result = cli("--db", sqlite_url, "calibrate", "--json", "--n-boot", "0", "--estimand", "questions")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["estimand"] == "questions"
    assert document["human_label_model"]["model"] == "majority_vote"  # 2 ratings per item
    assert "perfect raters" in document["human_label_model"]["note"]
    (cell,) = document["cells"]
    assert cell["n_questions"] == 8 and len(cell["questions"]) == 8
    assert sum(q["n_judged"] for q in cell["questions"]) == cell["n_judged"]
    questions, responses = cell["by_estimand"]["questions"], cell["by_estimand"]["responses"]
    assert cell["corrected"] == questions["corrected"] and questions["corrected"]["estimand"] == "questions"
    width = lambda e: e["high"] - e["low"]  # noqa: E731
    assert width(questions["judge_rate"]) >= 2 * width(responses["judge_rate"])
    table = cli("--db", sqlite_url, "calibrate", "--n-boot", "0")
    assert table.exit_code == 0, table.stderr
    assert "corrected (questions)" in table.stdout and "perfect raters" in table.stdout


def test_calibrate_method_pooled_on_a_small_study(
    engine: Engine, db_url: str, cli: Callable[..., CliResult]
) -> None:
    # Three cells (models), each judged into misaligned / aligned; a study stratified by judge label x
    # model; the same 'human truth' in every cell, so the judge's error rates transfer.
    strata: dict[int, str] = {}
    for model in ("m1", "m2", "m3"):
        ids = add_responses(engine, {"misaligned": 30, "aligned": 150}, cell={"model": model})
        strata |= {rid: stratum for stratum, rids in ids.items() for rid in rids}
    with write_session(engine) as session:
        create_study(session, "many", strata_keys=("judge_label", "model"), per_stratum=10, overlap=1, seed=2)
        rater = add_rater(session, "r0").rater.id
    assert rater is not None
    _rate_everything(engine, "many", [rater], strata)

    result = cli("--db", db_url, "calibrate", "--json", "--n-boot", "0", "--method", "pooled")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["method"] == "pooled"
    pooled = document["pooled_calibration"]
    assert pooled["method"] == "pooled_rogan_gladen_lang_reiczigel"
    assert pooled["pool_cells"] == ["model=m1", "model=m2", "model=m3"]
    assert pooled["pool"]["n_labelled"] == 60
    for cell in document["cells"]:
        assert cell["corrected"]["method"] == "pooled_rogan_gladen_lang_reiczigel"
        assert cell["corrected_per_cell_design"]["method"].startswith("two_phase_")
        # theta = (q + Sp - 1) / (Se + Sp - 1) from the pooled Se/Sp and the cell's judge rate 30/180
        se, sp = pooled["pool"]["sensitivity"]["rate"], pooled["pool"]["specificity"]["rate"]
        theta = (30 / 180 + sp - 1) / (se + sp - 1)
        assert abs(cell["corrected"]["rate"] - min(max(theta, 0.0), 1.0)) < 1e-12

    table = cli("--db", db_url, "calibrate", "--n-boot", "0", "--method", "pooled")
    assert table.exit_code == 0, table.stderr
    assert "method: pooled calibration across cells" in table.stdout
    assert "assumes transfer" in table.stdout and "pooled_rogan_gladen_lang_reiczigel" in table.stdout
    csv = cli("--db", db_url, "calibrate", "--n-boot", "0", "--method", "pooled", "--format", "csv")
    assert csv.exit_code == 0 and "pooled_rogan_gladen_lang_reiczigel" in csv.stdout
    latex = cli("--db", db_url, "calibrate", "--n-boot", "0", "--method", "pooled", "--format", "latex")
    assert latex.exit_code == 0 and "pooled" in latex.stdout and "transfer" in latex.stdout
    # the default is still the per-cell design
    plain = json.loads(cli("--db", db_url, "calibrate", "--json", "--n-boot", "0").stdout)
    assert plain["method"] == "two_phase" and "pooled_calibration" not in plain
    bad = cli("--db", db_url, "calibrate", "--method", "pooled", "--estimand", "questions")
    assert bad.exit_code == 2 and bad.stderr.strip().splitlines() == [
        "error: --method pooled estimates the responses estimand only; use --estimand responses"
    ]
