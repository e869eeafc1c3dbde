"""The report's one reader of the calibrate document: required fields, optional fields, figures."""

from __future__ import annotations

import copy
from typing import Any

import pandas as pd
import pytest

from emaudit.calibration.paper_report import parse_formats
from emaudit.calibration.report import calibrate_document
from emaudit.calibration.report_contrasts import study_contrasts
from emaudit.calibration.report_figures import shots_figure, text_overlaps, wrap_cell
from emaudit.calibration.report_formats import latex_escape, to_latex
from emaudit.calibration.report_tables import (
    cells_table,
    contrasts_table,
    judge_comparison_table,
    judge_differences_table,
)
from emaudit.calibration.report_view import parse_cell_name, read_document

CELLS = {
    # cell: (N misaligned, N aligned, labels per stratum, positives among misaligned / aligned labels)
    "model=org/m|n_shots=0": (10, 190, 10, (6, 1)),
    "model=org/m|domain=medical|n_shots=4": (40, 160, 10, (8, 1)),
    "model=org/m|domain=medical|n_shots=16": (80, 120, 10, (9, 2)),
    "model=org/m|domain=sports|n_shots=16": (60, 140, 10, (7, 1)),
}


def _document() -> dict[str, Any]:
    judged, items, ratings = [], [], []
    item = 0
    for cell, (n_mis, n_al, labels, (x_mis, x_al)) in CELLS.items():
        judged += [
            {"cell": cell, "stratum": "misaligned", "n": n_mis},
            {"cell": cell, "stratum": "aligned", "n": n_al},
        ]
        for stratum, x in (("misaligned", x_mis), ("aligned", x_al)):
            for k in range(labels):
                items.append({"item": item, "cell": cell, "stratum": stratum})
                ratings.append({"item": item, "rater": 1, "label": "misaligned" if k < x else "aligned"})
                item += 1
    document = calibrate_document(pd.DataFrame(judged), pd.DataFrame(items), pd.DataFrame(ratings), n_boot=0)
    document["study"] = "s"
    return document


def test_reads_every_required_field_and_names_cells_whole() -> None:
    document = _document()
    view = read_document(document)
    assert [c.name for c in view.cells] == sorted(CELLS)
    assert parse_cell_name("model=org/m|domain=medical|n_shots=4") == {
        "model": "org/m",
        "domain": "medical",
        "n_shots": "4",
    }
    cell = view.cell("model=org/m|domain=medical|n_shots=4")
    raw = next(c for c in document["cells"] if c["cell"] == cell.name)
    assert cell.corrected is not None and cell.corrected.rate == raw["corrected"]["rate"]
    assert cell.judge_rate == raw["judge_rate"] == 40 / 200
    # The document's Wilson interval of 40 of 200 (by_estimand.responses.judge_rate):
    # z^2 = 3.841459; centre = (0.2 + z^2/400) / (1 + z^2/200) = 0.2096036 / 1.0192073 = 0.205653;
    # half = z sqrt(0.2*0.8/200 + z^2/160000) / 1.0192073 = 1.959964 * 0.0287056 / 1.0192073 = 0.055202
    assert cell.judge_interval is not None
    assert cell.judge_interval.method == raw["by_estimand"]["responses"]["judge_rate"]["method"]
    assert cell.judge_interval.low == pytest.approx(0.205653 - 0.055202, abs=2e-6)
    assert cell.judge_interval.high == pytest.approx(0.205653 + 0.055202, abs=2e-6)
    assert view.overall.n_judge_positive == 190
    assert cell.corrected.estimand == "responses" and "responses" in view.estimands


def test_optional_fields_appear_when_the_document_gains_them() -> None:
    document = copy.deepcopy(_document())
    for raw in document["cells"]:
        raw["corrected"]["estimand"] = "responses"
        raw["corrected_questions"] = dict(raw["corrected"], low=0.01, high=0.9, estimand="questions")
        raw["questions"] = [{"question": "q1", "n": 50, "judge_rate": 0.1, "low": 0.04, "high": 0.21}]
    document["human_label_model"] = "dawid_skene"
    fnr = {"rate": 0.3, "low": 0.2, "high": 0.45, "method": "m", "confidence": 0.95, "flags": []}
    document["judges"] = {  # the shape of issue 11's JudgeComparison.to_dict()
        "estimand": "responses",
        "judges": [{"judge": "gpt-4o", "n_labelled": 60, "fnr": fnr, "threshold": None}],
        "differences": [{"judge": "llama", "reference": "gpt-4o", "measure": "fnr", "difference": fnr}],
    }
    view = read_document(document)
    cell = view.cells[0]
    assert cell.corrected is not None and cell.corrected.estimand == "responses"
    assert set(cell.extra_corrected) == {"questions", "if raters perfect"}  # + the humans-as-truth one
    assert cell.extra_corrected["questions"].low == 0.01
    assert cell.questions[0].judge is not None and cell.questions[0].judge.high == 0.21
    table = cells_table(view)
    assert "corrected, questions (%)" in table.header
    assert table.data.loc[0, "corrected_questions_low"] == 0.01
    assert "responses" in table.rows[0][table.header.index("method, estimand")]
    judges = judge_comparison_table(view)
    assert judges is not None and judges.rows == [["gpt-4o", "60", "30.0 [20.0, 45.0]", "–"]]
    assert judges.data.loc[0, "fnr_high"] == 0.45
    differences = judge_differences_table(view)
    assert differences is not None and differences.rows[0][-1] == "30.0 [20.0, 45.0]"
    assert view.human_label_model == "dawid_skene" and view.estimands == ("questions", "responses")
    assert judge_comparison_table(read_document(_document())) is None


def test_contrasts_pair_conditions_with_their_baseline_and_domains_with_each_other() -> None:
    view = read_document(_document())
    contrasts = study_contrasts(view)
    pairs = {(c.kind, c.first, c.second) for c in contrasts}
    base = "model=org/m|n_shots=0"
    assert pairs == {
        ("condition vs baseline", "model=org/m|domain=medical|n_shots=4", base),
        ("condition vs baseline", "model=org/m|domain=medical|n_shots=16", base),
        ("condition vs baseline", "model=org/m|domain=sports|n_shots=16", base),
        ("domain vs domain", "model=org/m|domain=medical|n_shots=16", "model=org/m|domain=sports|n_shots=16"),
    }
    first = contrasts[0]
    a, b = view.cell(first.first).corrected, view.cell(first.second).corrected
    assert a is not None and b is not None
    assert first.difference.difference == pytest.approx(a.rate - b.rate, abs=1e-15)
    assert contrasts_table(view, contrasts).data["difference"].tolist() == [
        c.difference.difference for c in contrasts
    ]
    explicit = study_contrasts(view, baseline="model=org/m|domain=sports|n_shots=16")
    assert len(explicit) == 3 and {c.kind for c in explicit} == {"cell vs baseline"}


def test_shots_figure_draws_one_panel_per_domain_and_instruction() -> None:
    document = _document()
    figure = shots_figure(read_document(document))
    assert figure is not None
    visible = [ax for ax in figure.figure.axes if ax.get_visible()]
    assert sorted(ax.get_title() for ax in visible) == ["domain medical", "domain sports"]
    assert visible[0].get_xlabel() == "in-context examples (shots)"
    assert visible[0].get_ylabel() == "EM rate (%)"
    assert text_overlaps(figure.figure) == []
    for raw in document["cells"]:
        raw["cell"] += "|instruction=evil"
    figure = shots_figure(read_document(document))
    assert figure is not None
    assert "instruction evil" in figure.figure.axes[0].get_title()


def test_latex_escapes_cell_names_and_keeps_braces_balanced() -> None:
    view = read_document(_document())
    text = to_latex(cells_table(view))
    assert "\\toprule" in text and "\\midrule" in text and "\\bottomrule" in text
    assert latex_escape("model=a_b|x%") == "model=a\\_b\\textbar{}x\\%"
    body = text.replace("\\{", "").replace("\\}", "")
    assert body.count("{") == body.count("}")
    assert wrap_cell("model=a|domain=b|n_shots=8", 14) == "model=a\ndomain=b\nn_shots=8"


def test_report_formats_are_checked() -> None:
    assert parse_formats("html, LaTeX,csv") == ["html", "latex", "csv"]
    with pytest.raises(ValueError, match="pdf"):
        parse_formats("html,pdf")
