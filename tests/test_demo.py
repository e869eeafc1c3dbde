"""`emaudit demo`: the README's main command runs the whole audit offline and its numbers hold up."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from emaudit.demo import STUDY_TOTAL, p_risky, simulated_truth
from tests.conftest import CliResult


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One demo run shared by the tests below (it takes ~25 s)."""
    import contextlib
    import io

    from emaudit.cli import main

    directory = tmp_path_factory.mktemp("demo") / "demo"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        main(["demo", "--dir", str(directory)])
    assert exit_.value.code in (0, None)
    return directory, out.getvalue()


def test_demo_runs_every_step_and_labels_the_simulation(demo_run: tuple[Path, str]) -> None:
    directory, stdout = demo_run
    for step in ("$ emaudit generate", "$ emaudit judge", "$ emaudit study create", "$ emaudit calibrate"):
        assert step in stdout
    assert "$ emaudit report --study demo" in stdout
    assert f"{STUDY_TOTAL * 3} ratings submitted" in stdout  # every item x overlap 3
    assert "simulated raters" in stdout and "scripted, imperfect judge" in stdout
    assert "known here because the model, judge and raters are simulated" in stdout
    html = (directory / "report" / "report.html").read_text()
    assert "SIMULATED DATA" in html and "simulated truth" in html
    methods = (directory / "report" / "methods.tex").read_text()
    # written from the design: 5 cells x (6 questions x 10 samples x 2 seeds, or 1 condition at 0 shots)
    facts = [
        "scored 540 responses in 5 cell(s) defined by domain, n\\_shots",
        "neyman allocation",
        f"{STUDY_TOTAL} items",
        "up to 3 of 3 raters",
        "with 180 human labels",
        "alignment $<$ 30",
        "All data in this report are simulated",
        "Zou \\& Donner 2008",
        "Newcombe 1998",
        "Krippendorff 2004",
    ]
    for fact in facts:
        assert fact in methods, fact


def test_demo_truth_lies_in_every_printed_corrected_interval(
    demo_run: tuple[Path, str], cli: Callable[..., CliResult]
) -> None:
    directory, stdout = demo_run
    url = f"sqlite:///{directory / 'demo.db'}"
    document = json.loads(cli("--db", url, "calibrate", "--json", "--n-boot", "0").stdout)
    cells = {cell["cell"]: cell for cell in document["cells"]}
    truth = simulated_truth(url)
    assert (
        set(truth)
        == set(cells)
        == {
            "domain=-|n_shots=-",
            "domain=extreme_sports|n_shots=2",
            "domain=extreme_sports|n_shots=8",
            "domain=risky_financial|n_shots=2",
            "domain=risky_financial|n_shots=8",
        }
    )
    printed = stdout[stdout.index("Why correction matters") :]
    for cell, rate in truth.items():
        shots = 0 if cell.endswith("n_shots=-") else int(cell.rsplit("=", 1)[1])
        assert abs(rate - p_risky(shots)) < 0.15  # the scripted model's rate, up to sampling
        corrected = cells[cell]["corrected"]
        assert corrected["low"] <= rate <= corrected["high"], (cell, rate, corrected)
        # the printed row: truth, judge raw rate, corrected rate and interval, "yes"
        row = next(line for line in printed.splitlines() if f" {cell} " in line)
        assert f"{100 * rate:.1f}%" in row and f"{100 * cells[cell]['judge_rate']:.1f}%" in row
        assert f"[{100 * corrected['low']:.1f}, {100 * corrected['high']:.1f}]" in row
        assert row.rstrip(" │").endswith("yes")


def test_demo_report_numbers_equal_calibrate_json(
    demo_run: tuple[Path, str], cli: Callable[..., CliResult]
) -> None:
    directory, _ = demo_run
    report = directory / "report"
    url = f"sqlite:///{directory / 'demo.db'}"
    document = json.loads(cli("--db", url, "calibrate", "--json").stdout)  # the report's defaults
    saved = json.loads((report / "calibrate.json").read_text())
    assert saved == document
    table = pd.read_csv(report / "cells.csv").set_index("cell")
    html = (report / "report.html").read_text()
    latex = (report / "cells.tex").read_text()
    for entry in [*document["cells"], document["overall"]]:
        name = entry["cell"] or "overall"
        row = table.loc[name]
        assert row["n_judged"] == entry["n_judged"]
        assert row["judge_rate"] == entry["judge_rate"]  # exact: CSV floats round-trip
        for key in ("rate", "low", "high"):
            column = "corrected" if key == "rate" else f"corrected_{key}"
            assert row[column] == entry["corrected"][key]
            for err in ("fnr", "fpr"):
                column = err if key == "rate" else f"{err}_{key}"
                assert row[column] == entry["judge_errors"][err][key]
        shown = "{:.1f} [{:.1f}, {:.1f}]".format(
            *(100 * entry["corrected"][k] for k in ("rate", "low", "high"))
        )
        assert shown in html and shown in latex
    agreement = pd.read_csv(report / "agreement.csv").set_index(["who", "statistic"])
    for who in ("human_human", "judge_human"):
        for statistic, value in document["agreement"][who].items():
            row = agreement.loc[(who, statistic)]
            for key in ("value", "low", "high"):
                if value.get(key) is not None:
                    assert row[key] == value[key], (who, statistic, key)
            if value.get("value") is not None:
                assert f"{value['value']:.3f}" in html
    judge_errors = pd.read_csv(report / "judge_errors.csv").set_index("cell")
    for entry in document["cells"]:
        for name, est in entry["judge_errors"].items():
            assert judge_errors.loc[entry["cell"], name] == est["rate"]


def test_demo_report_html_is_self_contained_and_latex_is_booktabs(demo_run: tuple[Path, str]) -> None:
    report = demo_run[0] / "report"
    html = (report / "report.html").read_text()
    assert 'id="table-cells"' in html
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(images) >= 5 and all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched: opens offline
    for tex in report.glob("*.tex"):
        text = tex.read_text()
        unescaped = re.sub(r"\\[{}]", "", text)
        assert unescaped.count("{") == unescaped.count("}"), tex.name
        if tex.name != "methods.tex":
            assert text.index("\\toprule") < text.index("\\midrule") < text.index("\\bottomrule")
    for name in ("cells", "shots", "scatter", "contrasts", "judge_errors", "threshold_sweep", "questions"):
        assert (report / "figures" / f"{name}.png").stat().st_size > 5000, name
        assert (report / "figures" / f"{name}.svg").is_file()
    contrasts = pd.read_csv(report / "contrasts.csv")
    assert set(contrasts["kind"]) == {"condition vs baseline", "domain vs domain"}


def test_demo_report_figures_have_no_overlapping_text(demo_run: tuple[Path, str]) -> None:
    from emaudit.calibration.paper_report import build_report
    from emaudit.calibration.report_figures import text_overlaps
    from emaudit.calibration.report_store import load_report_inputs
    from emaudit.store import make_engine

    engine = make_engine(f"sqlite:///{demo_run[0] / 'demo.db'}")
    report = build_report(load_report_inputs(engine, "demo", n_boot=0), simulated=True)
    engine.dispose()
    assert not any("still touches" in note for note in report.notes)
    for figure in report.figures:
        assert text_overlaps(figure.figure) == [], figure.name
        labels = [ax.get_xlabel() for ax in figure.figure.axes if ax.get_visible()]
        assert all(label and ("%" in label or "(" in label) for label in labels), (figure.name, labels)


def test_demo_app_serves_the_demo_study_and_prints_a_rater_and_an_admin_link(tmp_path: Path) -> None:
    """`emaudit demo --app` in a real process: links printed, Streamlit answers, tokens are in the store."""
    import os
    import signal
    import subprocess
    import sys

    from sqlalchemy import select

    from emaudit.annotate.app.server import free_port, wait_until_serving
    from emaudit.annotate.raters import hash_token
    from emaudit.models import Rater, Study
    from emaudit.store import make_engine

    port = free_port()
    directory = tmp_path / "demo"
    process = subprocess.Popen(
        [sys.executable, "-c", "from emaudit.cli import main; main()", "demo", "--dir", str(directory),
         "--app", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env=os.environ | {"COLUMNS": "200"},
    )  # fmt: skip
    links: dict[str, str] = {}
    try:
        assert process.stdout is not None
        for line in process.stdout:
            for kind in ("rater", "admin"):
                if line.startswith(f"{kind} link: "):
                    links[kind] = line.split(": ", 1)[1].strip()
            if len(links) == 2:
                break
        assert set(links) == {"rater", "admin"}, "the demo ended without printing both links"
        wait_until_serving(f"http://localhost:{port}", process, timeout=90)  # the demo serves it
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the demo and the streamlit it started, nothing else
        process.wait(timeout=30)
    assert all(link.startswith(f"http://localhost:{port}/?token=") for link in links.values())
    engine = make_engine(f"sqlite:///{directory / 'demo.db'}")
    with engine.connect() as connection:
        rows = {
            row.token_hash: row
            for row in connection.execute(select(Rater.token_hash, Rater.role, Rater.study_id))  # type: ignore[call-overload]
        }
        demo_id = connection.execute(select(Study.id).where(Study.name == "demo")).scalar_one()  # type: ignore[arg-type]
    engine.dispose()
    rater = rows[hash_token(links["rater"].split("token=")[1])]
    admin = rows[hash_token(links["admin"].split("token=")[1])]
    assert (rater.role, rater.study_id) == ("rater", demo_id)
    assert admin.role == "admin"


def test_report_and_calibrate_refuse_bad_options_in_one_line(
    demo_run: tuple[Path, str], cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    url = f"sqlite:///{demo_run[0] / 'demo.db'}"
    for args, expected in (
        (
            ["report", "--format", "html,pdf", "--out", tmp_path / "r"],
            "--format: unknown report format(s) pdf",
        ),
        (
            ["report", "--baseline", "model=x", "--out", tmp_path / "r"],
            "--baseline: no cell 'model=x'; cells: ",
        ),
        (["calibrate", "--format", "xml"], "--format: unknown format 'xml'"),
    ):
        result = cli("--db", url, *args)
        assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"error: {expected}")
    assert not (tmp_path / "r").exists()  # nothing written
