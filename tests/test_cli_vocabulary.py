"""One vocabulary across commands (issue 14 point 4) and commands that say what they are doing (5)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import Engine, insert
from sqlmodel import Session

from emaudit.annotate import add_rater, create_study
from emaudit.formats import cell_name
from emaudit.models import JudgeScore, utcnow
from emaudit.store import open_store, write_session
from tests.annotate.factory import JUDGE, add_responses
from tests.calibration.test_calibration_cli import _rate_everything
from tests.conftest import CliResult


def test_a_missing_cell_value_is_written_the_same_everywhere() -> None:
    assert cell_name({"model": "m", "domain": None, "n_shots": 16}) == "model=m|domain=-|n_shots=16"
    assert cell_name({}) == "all"


def test_rates_keeps_judge_and_generation_errors_apart_and_writes_cells_like_calibrate(
    sqlite_engine: Engine, sqlite_url: str, cli: Callable[..., CliResult]
) -> None:
    ids = add_responses(sqlite_engine, {"misaligned": 3, "aligned": 5}, no_text=2, unjudged=1)
    with Session(sqlite_engine) as session:  # one judge request that failed: a judge error
        session.execute(
            insert(JudgeScore),
            [
                {
                    "response_id": ids["_unjudged"][0],
                    "judge_model": JUDGE,
                    "metric": metric,
                    "score": None,
                    "error": "HTTP 500",
                    "prompt_hash": "",
                    "created_at": utcnow(),
                }
                for metric in ("aligned", "coherent")
            ],
        )
        session.commit()
    table = cli("--db", sqlite_url, "rates", "--by", "model,domain")
    assert table.exit_code == 0, table.stderr
    header = next(line for line in table.stdout.splitlines() if "judge errors" in line)
    row = next(line for line in table.stdout.splitlines() if "model=m1|domain=-" in line)
    cells = dict(zip(header.split("┃")[1:-1], row.split("│")[1:-1], strict=True))
    cells = {k.strip(): v.strip() for k, v in cells.items()}
    assert (cells["responses"], cells["judge errors"], cells["gen errors"], cells["scored"]) == (
        "11",
        "1",
        "2",
        "8",
    )
    (record,) = json.loads(cli("--db", sqlite_url, "rates", "--json", "--by", "model,domain").stdout)
    assert record["cell"] == {"model": "m1", "domain": None}
    assert record["cell_name"] == "model=m1|domain=-"
    assert (record["n_judge_errors"], record["n_errors"]) == (1, 2)


def test_the_judge_rate_of_rates_reconciles_with_calibrate(
    sqlite_engine: Engine, sqlite_url: str, cli: Callable[..., CliResult]
) -> None:
    ids = add_responses(sqlite_engine, {"misaligned": 8, "aligned": 100, "null": 12})
    strata = {rid: stratum for stratum, rids in ids.items() for rid in rids}
    with write_session(sqlite_engine) as session:
        create_study(session, "audit", strata_keys=("judge_label",), per_stratum=4, seed=1)
        rater = add_rater(session, "r0").rater.id
    assert rater is not None
    _rate_everything(sqlite_engine, "audit", [rater], strata)
    (rates,) = json.loads(cli("--db", sqlite_url, "rates", "--json").stdout)
    document = json.loads(cli("--db", sqlite_url, "calibrate", "--json", "--n-boot", "200").stdout)
    (cell,) = document["cells"]
    # rates: 8 misaligned of 108 scored; calibrate: 8 judge-misaligned of 120 judged (the 12 null
    # scores are a judge stratum of their own there).
    assert rates["rate"] == 8 / 108 and rates["rate_denominator"] == "n_scored"
    assert rates["rate_of_judged"] == cell["judge_rate"] == 8 / 120
    assert rates["cell_name"] == "model=m1"
    # Both tables state their denominators in the same words.
    assert "misaligned / (scored + null)" in cli("--db", sqlite_url, "rates").stdout
    assert "judged (scored + null scores)" in cli("--db", sqlite_url, "calibrate", "--n-boot", "200").stdout


def test_raters_list_names_the_study(
    sqlite_engine: Engine, sqlite_url: str, cli: Callable[..., CliResult]
) -> None:
    add_responses(sqlite_engine, {"misaligned": 4, "aligned": 4})
    with write_session(sqlite_engine) as session:
        create_study(session, "pilot-study", strata_keys=("judge_label",), per_stratum=2)
        add_rater(session, "alice", study="pilot-study")
        add_rater(session, "bob")
    listing = cli("--db", sqlite_url, "raters", "list").stdout
    alice = next(line for line in listing.splitlines() if "alice" in line)
    assert "pilot-study" in alice
    studies = cli("--db", sqlite_url, "study", "list").stdout
    assert studies.strip() == "pilot-study: 4 items, 0 complete, ratings 0/4"


def test_working_shows_a_spinner_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from emaudit import console as console_module

    screen = io.StringIO()
    monkeypatch.setattr(console_module, "err_console", Console(file=screen, force_terminal=True))
    with console_module.working("counting responses and scores per cell"):
        pass
    assert "counting responses and scores per cell" in screen.getvalue()
    piped = io.StringIO()
    monkeypatch.setattr(console_module, "err_console", Console(file=piped, force_terminal=False))
    with console_module.working("counting"):
        pass
    assert piped.getvalue() == ""


def test_a_failed_init_removes_the_file_it_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_migration(*_args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("emaudit.store.migrate", broken_migration)
    path = tmp_path / "new.db"
    with pytest.raises(RuntimeError, match="disk full"):
        open_store(f"sqlite:///{path}", upgrade=True)
    assert not path.exists()
    assert not list(tmp_path.iterdir())


def test_commands_needing_no_store_do_not_import_it() -> None:
    """`--help` and `plan` must start fast: the CLI modules import no SQLAlchemy, pandas or alembic."""
    import subprocess
    import sys

    code = (
        "import sys, emaudit.cli; "
        "print(sorted(m for m in ('sqlalchemy', 'alembic', 'pandas', 'statsmodels', 'scipy', 'numpy', "
        "'sqlmodel', 'openai', 'asyncio') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
