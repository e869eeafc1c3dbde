"""`emaudit report` on the reference data (29 files imported as README shows; cells named with "/").

Every figure renders without overlapping or clipped text at the default size (matplotlib's text
bounding boxes), the report completes in well under a minute (target 30 s: benchmarks/report_speed.py),
and its numbers equal `calibrate --json`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from emaudit.calibration.report_figures import (
    cells_figure,
    judge_errors_figure,
    question_figures,
    scatter_figure,
    text_overlaps,
)
from emaudit.calibration.report_rows import per_question_rates
from emaudit.calibration.report_store import load_report_inputs
from emaudit.calibration.report_view import read_document
from emaudit.models import Rater, Rating, StudyItem
from emaudit.store import make_engine, write_session
from tests.conftest import REFERENCE, CliResult, requires_shared

pytestmark = requires_shared


def _rate_every_item(url: str, study: str, seed: int = 0) -> int:
    """One simulated rater per item: the judge's label, flipped 10% of the time (no truth is known)."""
    from emaudit.annotate import add_rater

    engine = make_engine(url)
    rng = np.random.default_rng(seed)
    with write_session(engine) as session:
        raters = [add_rater(session, f"simulated rater {i}", study=study).rater.id for i in range(2)]
        items = session.execute(select(StudyItem.id, StudyItem.stratum)).all()  # type: ignore[call-overload]
        for item_id, stratum in items:
            for rater_id in raters:
                misaligned = stratum.startswith("misaligned") != (rng.random() < 0.10)
                session.add(
                    Rating(
                        item_id=item_id,
                        rater_id=rater_id,
                        label="misaligned" if misaligned else "aligned",
                        alignment=float(rng.uniform(2, 25) if misaligned else rng.uniform(70, 99)),
                        coherence=float(rng.uniform(60, 99)),
                    )
                )
    engine.dispose()
    assert Rater  # the raters above are real rows of the store
    return len(items)


def _emaudit(*args: object) -> str:
    """Run ``emaudit ARGS`` in-process (for the module fixture, which cannot use ``cli``)."""
    import contextlib
    import io

    from emaudit.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        main([str(a) for a in args])
    assert exit_.value.code in (0, None), out.getvalue()
    return out.getvalue()


@pytest.fixture(scope="module")
def reference_study(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The 29 reference files imported as README shows, a judge x model study, two simulated raters."""
    url = f"sqlite:///{tmp_path_factory.mktemp('reference') / 'ref.db'}"
    files = sorted(REFERENCE.rglob("*.csv"))
    assert len(files) == 29
    _emaudit("--db", url, "init")
    _emaudit("--db", url, "responses", "import", "--add-questions", *files)
    _emaudit(
        "--db", url, "study", "create", "ref", "--strata", "judge_label,model", "--allocation", "neyman",
        "--total", "700", "--seed", "3",
    )  # fmt: skip
    _rate_every_item(url, "ref")
    return url


def test_report_on_reference_data_is_fast_readable_and_equal_to_calibrate(
    reference_study: str, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    out = tmp_path / "report"
    started = time.perf_counter()
    result = cli(
        "--db", reference_study, "report", "--study", "ref", "--out", out, "--format", "html,csv,png"
    )
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.stderr
    # Target < 30 s (benchmarks/report_speed.py); the test allows 2x for a host shared with other jobs.
    assert elapsed < 60, f"report took {elapsed:.1f} s"

    document = json.loads(cli("--db", reference_study, "calibrate", "--study", "ref", "--json").stdout)
    names = [c["cell"] for c in document["cells"]]
    assert any("/" in name for name in names)  # Hugging Face ids: longtermrisk/Qwen2.5-...
    table = pd.read_csv(out / "cells.csv").set_index("cell")
    html = (out / "report.html").read_text()
    for entry in document["cells"]:
        assert entry["cell"] in html  # names whole, never cut
        if entry["corrected"] is not None:
            assert table.loc[entry["cell"], "corrected"] == entry["corrected"]["rate"]
            assert table.loc[entry["cell"], "corrected_high"] == entry["corrected"]["high"]
        assert table.loc[entry["cell"], "judge_rate"] == entry["judge_rate"]

    # The overlap check ran on the very figures this run rendered (build_report fits every figure
    # with text_overlaps and notes any text it could not place); here the notes are asserted empty.
    assert "still touches" not in html
    drawn = {p.stem for p in (out / "figures").glob("*.png")}
    assert {"cells", "scatter", "judge_errors", "threshold_sweep", "questions_1"} <= drawn
    assert html.count('src="data:image/png;base64,') == len(drawn)


def test_every_reference_figure_passes_the_overlap_check_at_the_default_size(reference_study: str) -> None:
    engine = make_engine(reference_study)
    inputs = load_report_inputs(engine, "ref", n_boot=0)
    engine.dispose()
    view = read_document(inputs.document)
    figures = [
        cells_figure(view),
        scatter_figure(inputs.responses, inputs.items),
        judge_errors_figure(view),
        question_figures(per_question_rates(view, inputs.responses))[0],
    ]
    for figure in figures:
        if figure is not None:  # as drawn, before build_report would widen anything
            assert text_overlaps(figure.figure) == [], figure.name
    assert figures[0] is not None and figures[0].figure.get_size_inches()[0] >= 7.0


def test_calibrate_terminal_keeps_long_cell_names_whole(
    reference_study: str, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    from emaudit.console import console

    monkeypatch.setattr(console, "_width", 120, raising=False)
    result = cli("--db", reference_study, "calibrate", "--study", "ref", "--n-boot", "0")
    assert result.exit_code == 0, result.stderr
    document = json.loads(cli("--db", reference_study, "calibrate", "--json", "--n-boot", "0").stdout)
    lines = result.stdout.splitlines()
    for entry in document["cells"]:
        assert f"cell {entry['cell']}" in lines  # a whole line per cell: never truncated
    assert "…" not in result.stdout
    # a stratum without labels is named in its note, under its cell
    empty = next(
        (c["cell"], s["stratum"])
        for c in document["cells"]
        for s in c["strata"]
        if s["N"] and not s["n_labelled"]
    )
    block = result.stdout.split(f"cell {empty[0]}\n", 1)[1].split("\ncell ", 1)[0]
    assert f"note: stratum {empty[1]}: no human labels among N=" in block
    csv = cli("--db", reference_study, "calibrate", "--format", "csv", "--n-boot", "0").stdout
    from io import StringIO

    table = pd.read_csv(StringIO(csv)).set_index("cell")
    for entry in document["cells"]:
        assert table.loc[entry["cell"], "n_judged"] == entry["n_judged"]
    latex = cli("--db", reference_study, "calibrate", "--format", "latex", "--n-boot", "0").stdout
    assert "\\toprule" in latex and "longtermrisk/Qwen2.5-Coder-32B-Instruct\\_ftjob" in latex
