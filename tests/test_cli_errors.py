"""Every mistake a new user makes, run through the installed ``emaudit`` console script.

Each case is a whole process, as a user's shell runs it: exit status 2, one message line on stderr
(click's usage hint beside it is allowed), no Python traceback, nothing stored, and no database
file left behind where there was none.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from emaudit.models import Condition, JudgeScore, Question, Rating, Response, Study
from emaudit.store import make_engine, migrate
from tests.annotate.factory import add_responses

EMAUDIT = (
    str(Path(sys.executable).with_name("emaudit"))
    if Path(sys.executable).with_name("emaudit").exists()
    else shutil.which("emaudit")
)
pytestmark = pytest.mark.skipif(EMAUDIT is None, reason="the emaudit console script is not installed")

USAGE_LINES = ("Usage: ", "Try '")


def _run(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"EMAUDIT_DATABASE_URL": f"sqlite:///{tmp_path / 'default.db'}", "COLUMNS": "200"}
    assert EMAUDIT is not None
    return subprocess.run(
        [EMAUDIT, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout
    )


def _message_lines(stderr: str) -> list[str]:
    """stderr without click's usage hint: what the user is told is wrong."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(USAGE_LINES)]


def _counts(engine: Engine) -> tuple[int, ...]:
    with engine.connect() as connection:
        return tuple(
            connection.execute(select(func.count()).select_from(model.__table__)).scalar_one()  # type: ignore[attr-defined]
            for model in (Question, Condition, Response, JudgeScore, Study, Rating)
        )


def _assert_one_line_exit_2(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = _message_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert expected in lines[0], lines[0]


# (arguments, words the one line must contain). None of these needs a store.
NO_STORE_MISTAKES = [
    (["rates", "--bogus"], "No such option: --bogus"),
    (["stdy", "create", "x"], "No such command 'stdy'"),
    (["questions", "import"], "Missing argument"),
    (["calibrate", "--cant-tell", "maybe"], "choose exclude, misaligned or not_misaligned"),
    (["calibrate", "--method", "shared"], "choose two_phase or pooled"),
    (["report", "--method", "shared"], "choose two_phase or pooled"),
    (["plan", "--method", "pooled", "-r", "0.1", "--ppv", "0.6", "--npv", "0.98"], "and --n-judged"),
    (["report", "--cant-tell", "maybe"], "choose exclude, misaligned or not_misaligned"),
    (["rates", "--max-alignment", "abc"], "--max-alignment"),
    (["rates", "--max-alignment", "300"], "judge scores run from 0 to 100; got 300"),
    (["rates", "--min-coherence", "-5"], "judge scores run from 0 to 100"),
    (["rates", "--by", "model,,domain"], "comma-separated cell keys"),
    (["questions", "import", "missing.yaml"], "'missing.yaml' does not exist"),
    (["responses", "import", "missing.csv"], "no such file"),
    (["responses", "export", "-o", "/nonexistent/x.csv"], "folder '/nonexistent' does not exist"),
    (["ratings", "export", "--output", "/nonexistent/x.csv"], "folder '/nonexistent' does not exist"),
    (["--db", "sqlite:///no_such_dir/x.db", "rates"], "folder 'no_such_dir' does not exist"),
    (["--db", "sqlite:///no_such_dir/x.db", "init"], "folder 'no_such_dir' does not exist"),
    (["--db", "mysql://user@host/db", "rates"], "scheme 'mysql' is not supported; use sqlite:///"),
    (["--db", "not a url", "rates"], "does not parse"),
    (["--db", "postgresql://nobody@127.0.0.1:1/none", "rates"], "cannot open database postgresql://"),
    (["rates"], "no database at sqlite:///"),
    (["calibrate", "--confidence", "95"], "must be between 0 and 1, e.g. 0.95; got 95 (did you mean 0.95?)"),
    (["plan", "-r", "0.1", "--ppv", "0.8", "--npv", "0.99", "--confidence", "95"], "got 95"),
    (["calibrate", "--n-boot", "10"], "or at least 200"),
    (["calibrate", "--n-boot", "-1"], "or at least 200"),
    (
        ["plan", "-r", "0.1", "--ppv", "80", "--npv", "0.99"],
        "expected_ppv must be a proportion between 0 and 1",
    ),
    (["plan", "-r", "5", "--ppv", "0.8", "--npv", "0.99"], "judge rate of cell 0 must be a proportion"),
    (["plan", "-r", "0.1", "--ppv", "0.8", "--npv", "0.99", "--halfwidth", "2"], "did you mean 0.02?"),
    (["rates", "--db"], "--db needs a database URL"),
]


@pytest.mark.parametrize(
    ("args", "expected"), NO_STORE_MISTAKES, ids=[" ".join(a) for a, _ in NO_STORE_MISTAKES]
)
def test_a_mistake_is_one_line_exit_2_and_leaves_no_database(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    result = _run(tmp_path, *args)
    _assert_one_line_exit_2(result, expected)
    assert not list(tmp_path.rglob("*.db")), "a failed command left a database file behind"


def test_bare_emaudit_prints_the_help_on_stderr_and_exits_2(tmp_path: Path) -> None:
    result = _run(tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("Usage: emaudit [OPTIONS] COMMAND") and "Commands:" in result.stderr
    assert not list(tmp_path.rglob("*.db"))


def test_the_help_lists_every_command_with_its_help(tmp_path: Path) -> None:
    # The CLI builds the parameters of the invoked command only: the listing must not change.
    import typer

    from emaudit.cli import app

    full = typer.main.get_command(app)
    context = typer.Context(full, info_name="emaudit")
    result = _run(tmp_path, "--help")
    assert result.returncode == 0
    assert result.stdout.strip() == context.get_help().strip()
    for name in ("rates", "study", "calibrate", "plan", "generate", "judge"):
        assert f"  {name} " in result.stdout
    assert "rater or admin" in _run(tmp_path, "raters", "add", "--help").stdout


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, Engine]:
    """A store with judged responses and a judge-stratified study that has no ratings yet."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(url)
    migrate(engine)
    add_responses(engine, {"misaligned": 6, "aligned": 6})
    from emaudit.annotate import create_study

    with Session(engine) as session:
        create_study(session, "audit", strata_keys=("judge_label",), per_stratum=3, seed=0)
        session.commit()
    return url, engine


STORE_MISTAKES = [
    (["rates", "--by", "foo"], "--by: unknown cell key 'foo'; known keys:"),
    (["rates", "--judge-model", "nobody"], "no scores from judge 'nobody'"),
    (["calibrate"], "study 'audit' has no ratings yet"),
    (["calibrate", "--study", "nope"], "unknown study 'nope'"),
    (["study", "create", "audit"], "audit"),
    # Score bands (issue 10, point 2): bad edges or strata are refused before anything is drawn.
    (["study", "create", "s2", "--strata", "score_band", "--band-edges", "20", "--total", "4"],
     "--band-edges: band edges must lie strictly between the threshold 30 and 100; got 20"),
    (["study", "create", "s2", "--strata", "score_band", "--band-edges", "70,40", "--total", "4"],
     "band edges must increase strictly"),
    (["study", "create", "s2", "--strata", "score_band", "--band-edges", "x", "--total", "4"],
     "band edges must be numbers separated by commas"),
    (["study", "create", "s2", "--strata", "score_band,judge_label", "--total", "4"],
     "use judge_label or score_band in the strata, not both"),
    (["study", "create", "s2", "--strata", "score_band", "--allocation", "halfwidth+min:x", "--total", "4"],
     "write min:N with a whole number N >= 1"),
    (["plan", "--study-strata", "score_band", "--band-edges", "60,40"], "band edges must increase strictly"),
    (["plan", "--study-strata", "score_band", "--allocation", "bogus"], "must be neyman or halfwidth"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "expected"), STORE_MISTAKES, ids=[" ".join(a) for a, _ in STORE_MISTAKES])
def test_a_mistake_on_a_store_is_one_line_and_stores_nothing(
    tmp_path: Path, store: tuple[str, Engine], args: list[str], expected: str
) -> None:
    url, engine = store
    before = _counts(engine)
    # --db after the subcommand, as the README says it may be given.
    _assert_one_line_exit_2(_run(tmp_path, *args, "--db", url), expected)
    assert _counts(engine) == before


def test_db_is_accepted_after_the_subcommand(tmp_path: Path, store: tuple[str, Engine]) -> None:
    url, _ = store
    result = _run(tmp_path, "rates", "--json", "--db", url)
    assert result.returncode == 0, result.stderr
    assert '"n_responses": 12' in result.stdout
    result = _run(tmp_path, "rates", f"--db={url}")
    assert result.returncode == 0 and "model=m1" in result.stdout
    assert not (tmp_path / "default.db").exists()


def test_a_huge_plan_is_a_warning(tmp_path: Path) -> None:
    result = _run(tmp_path, "plan", "-r", "0.1", "--ppv", "0.8", "--npv", "0.99", "--halfwidth", "0.0001")
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "labels is more than any rating study collects" in result.stderr


def test_a_failed_init_leaves_no_file(tmp_path: Path) -> None:
    result = _run(tmp_path, "--db", f"sqlite:///{tmp_path / 'fresh.db'}", "init")
    assert result.returncode == 0 and (tmp_path / "fresh.db").exists()
    assert "database ready at schema" in result.stdout


def test_ctrl_c_says_what_was_stored_and_how_to_resume(tmp_path: Path) -> None:
    """SIGINT while an import waits on its file (a FIFO nobody writes): exit 130 and one note."""
    assert EMAUDIT is not None
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert _run(tmp_path, "--db", url, "init").returncode == 0
    first = tmp_path / "first.jsonl"
    first.write_text(
        '{"question_id": "q", "question": "Q?", "answer": "A.", "aligned": 90, "coherent": 90}\n'
    )
    fifo = tmp_path / "second.jsonl"
    os.mkfifo(fifo)
    env = os.environ | {"EMAUDIT_DATABASE_URL": url}
    process = subprocess.Popen(
        [EMAUDIT, "responses", "import", str(first), str(fifo), "--model", "m", "--add-questions"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell's background jobs inherit SIGINT ignored, and Python then never raises
        # KeyboardInterrupt: give the child the default disposition, as a terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while True:  # the writer end opens only once the importer has the FIFO open for reading
        try:
            writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the import never opened the FIFO"
            time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    os.close(writer)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    lines = _message_lines(stderr)
    assert len(lines) == 1, stderr
    assert lines[0].startswith("interrupted: second.jsonl was rolled back")
    assert "imported before it: first.jsonl" in lines[0] and "run the same command again" in lines[0]
    assert "first.jsonl: 1 rows" in stdout


QUESTIONS_YAML = "- id: q1\n  paraphrases: [Hello]\n  judge_prompts: {aligned: 'A {question} {answer}'}\n"
ANSWERS_CSV = "question_id,question,answer,aligned,coherent\nq1,Hello,Hi,10,90\n"

# Import mistakes (issue 14 point 3): (files to write, arguments, words the one line must contain).
IMPORT_MISTAKES = [
    (
        {"a.csv": ANSWERS_CSV.replace("q1,", "q7,")},
        ["responses", "import", "a.csv", "--model", "m"],
        "row 1: field 'question_id': unknown question 'q7'",
    ),
    (
        {"a.csv": ANSWERS_CSV},
        ["responses", "import", "a.csv", "--model", "m", "--set", "firts"],
        "question set 'firts' does not exist (sets in the store: first)",
    ),
    (
        {"other/first.yaml": QUESTIONS_YAML.replace("'A ", "'B ")},
        ["questions", "import", "other/first.yaml"],
        "set 'first' already holds 1 of these questions with other content",
    ),
    (
        {"a.csv": 'question_id,question,answer,aligned,coherent\nq1,Hello,"Hi,10,90\nq1,Hello,Yo,10,90\n'},
        ["responses", "import", "a.csv", "--model", "m"],
        "line 2: not a readable CSV",
    ),
    (
        {
            "a.csv": 'question_id,question,answer,aligned,coherent\nq1,Hello,"Hi,10,90\n'
            'q1,Hello,Yo,10,90\nq1,Hello,"ok",1,2\n'
        },
        ["responses", "import", "a.csv", "--model", "m"],
        "a quoted value that starts on line 2 runs over line ends",
    ),
    ({"res/m_medical.csv": ANSWERS_CSV}, ["responses", "import", "res"], "is a folder: pass --pattern"),
    (
        {"res/m_medical.csv": ANSWERS_CSV},
        ["responses", "import", "res", "--pattern", "{model}.jsonl"],
        "no file matches --pattern",
    ),
    (
        {"res/m_medical.csv": ANSWERS_CSV},
        ["responses", "import", "res", "--pattern", "{model}_{domain}.csv", "--model", "x"],
        "sets the model from the file name",
    ),
    ({"a.csv": ANSWERS_CSV}, ["responses", "import", "a.csv", "--pattern", "{model}.csv"], "is for a folder"),
]


@pytest.mark.parametrize(
    ("files", "args", "expected"), IMPORT_MISTAKES, ids=[" ".join(a) for _, a, _ in IMPORT_MISTAKES]
)
def test_an_import_mistake_is_one_line_and_stores_nothing(
    tmp_path: Path, files: dict[str, str], args: list[str], expected: str
) -> None:
    from emaudit.questions import import_questions

    url = f"sqlite:///{tmp_path / 'store.db'}"
    (tmp_path / "first.yaml").write_text(QUESTIONS_YAML, encoding="utf-8")
    engine = make_engine(url)
    migrate(engine)
    import_questions(engine, tmp_path / "first.yaml")
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content, encoding="utf-8")
    before = _counts(engine)
    _assert_one_line_exit_2(_run(tmp_path, "--db", url, *args), expected)
    assert _counts(engine) == before
    with engine.connect() as connection:
        prompts = connection.execute(select(Question.judge_prompts)).scalars().all()  # type: ignore[call-overload]
    assert prompts == [{"aligned": "A {question} {answer}"}]


def test_shell_completion_sees_every_command_whole(tmp_path: Path) -> None:
    env = os.environ | {
        "COMP_WORDS": "emaudit rates --",
        "COMP_CWORD": "2",
        "_EMAUDIT_COMPLETE": "complete_bash",
    }
    assert EMAUDIT is not None
    result = subprocess.run([EMAUDIT], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert {"--json", "--by", "--max-alignment"} <= set(result.stdout.split())
