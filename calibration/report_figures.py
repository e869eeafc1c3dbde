"""The report's figures (matplotlib, Agg, no pyplot state): greyscale-safe, labelled axes, intervals.

Judge-only numbers are open grey squares with dashed bands, corrected numbers filled black circles
with solid bands, so the two read apart in greyscale; markers differ as well as shades. Sizes grow
with the number of rows so labels never overlap (:func:`text_overlaps` checks it), and cell names are
shown whole, wrapped at ``|``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot: the report never opens a window

import matplotlib.text
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from emaudit.calibration.report_contrasts import Contrast, is_baseline
from emaudit.calibration.report_view import Cell, DocumentView

WIDTH = 7.0
"""Default figure width in inches (a page's text width)."""

_JUDGE = {"color": "0.45", "marker": "s", "mfc": "white", "ls": "none", "ms": 5, "capsize": 2}
_CORRECTED = {"color": "black", "marker": "o", "ls": "none", "ms": 5, "capsize": 2}
_FONT = 8.0


@dataclass(frozen=True)
class NamedFigure:
    """A figure with its file stem and caption."""

    name: str
    caption: str
    figure: Figure


DPI = 150
"""Resolution of the figures as drawn, checked and saved as PNG."""


def _figure(width: float, height: float) -> Figure:
    # Drawn at the PNG's resolution, so the overlap check's draw is the PNG's pixels (no second draw).
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def wrap_cell(name: str, width: int = 42) -> str:
    """Break a cell name at ``|`` so no line is longer than ``width`` (a single field is never cut)."""
    lines: list[str] = []
    for part in name.split("|"):
        if lines and len(lines[-1]) + 1 + len(part) <= width:
            lines[-1] += "|" + part
        else:
            lines.append(part)
    return "\n".join(lines)


def _label_width(labels: Sequence[str]) -> float:
    longest = max((len(line) for label in labels for line in label.split("\n")), default=8)
    return 0.6 * _FONT / 72 * longest + 0.3


def _percent_axis(ax: object, label: str) -> None:
    ax.set_xlabel(label, fontsize=_FONT + 1)  # type: ignore[attr-defined]
    ax.tick_params(labelsize=_FONT)  # type: ignore[attr-defined]
    ax.grid(axis="x", color="0.85", lw=0.6)  # type: ignore[attr-defined]


def _errorbar(ax: object, x: float, y: float, low: float, high: float, style: dict, **kw: object) -> None:
    ax.errorbar(  # type: ignore[attr-defined]
        # max(0, .): a bound that equals its estimate up to rounding must not give a negative bar
        [100 * x],
        [y],
        xerr=[[max(0.0, 100 * (x - low))], [max(0.0, 100 * (high - x))]],
        **style,
        **kw,
    )


def cells_figure(view: DocumentView, truth: dict[str, float] | None = None) -> NamedFigure:
    """Judge-only vs corrected EM rate per cell (forest plot), the simulated truth when known."""
    cells = list(view.all_cells)
    labels = [wrap_cell(c.name) for c in cells]
    lines = sum(label.count("\n") + 1 for label in labels)
    fig = _figure(max(WIDTH, _label_width(labels) + 4.2), 1.0 + 0.28 * max(lines, len(cells) * 1.6))
    ax = fig.add_subplot()
    for i, cell in enumerate(cells):
        y = len(cells) - 1 - i
        if cell.judge_interval is not None:
            j = cell.judge_interval
            _errorbar(ax, j.rate, y + 0.17, j.low, j.high, _JUDGE, label="judge only" if i == 0 else None)
        if cell.corrected is not None:
            c = cell.corrected
            _errorbar(ax, c.rate, y - 0.17, c.low, c.high, _CORRECTED, label="corrected" if i == 0 else None)
        if truth is not None and cell.name in truth:
            ax.plot(
                [100 * truth[cell.name]],
                [y],
                marker="*",
                color="0.2",
                ms=8,
                ls="none",
                label="simulated truth" if i == 0 else None,
            )
    ax.set_yticks(range(len(cells)), labels[::-1], fontsize=_FONT)
    ax.set_ylim(-0.7, len(cells) - 0.3)
    _percent_axis(ax, f"EM rate (% of responses, {view.confidence:.0%} interval)")
    ax.set_xlim(left=0)
    ax.legend(fontsize=_FONT, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return NamedFigure(
        "cells",
        "EM rate per cell: the judge's raw rate (open squares) and the error-corrected rate (filled "
        "circles), with intervals.",
        fig,
    )


def _shots(cell: Cell) -> float | None:
    value = cell.fields.get("n_shots")
    if value is None:
        return 0.0 if is_baseline(cell) else None
    try:
        return 0.0 if value == "-" else float(value)
    except ValueError:
        return None


def shots_figure(view: DocumentView, truth: dict[str, float] | None = None) -> NamedFigure | None:
    """EM rate against the number of in-context examples, one panel per domain (and instruction).

    ``truth`` (simulated studies only) adds the known true rate of each cell as a star.
    """
    if not any("n_shots" in c.fields for c in view.cells):
        return None
    panels: dict[tuple[str, str], list[tuple[float, Cell]]] = {}
    baselines = [c for c in view.cells if is_baseline(c)]
    for cell in view.cells:
        shots = _shots(cell)
        if shots is None or is_baseline(cell):
            continue
        key = (cell.fields.get("domain", "-"), cell.fields.get("instruction", ""))
        panels.setdefault(key, []).append((shots, cell))
    if not panels:
        return None
    for key, points in panels.items():
        rest = {k: v for k, v in points[0][1].fields.items() if k not in ("domain", "n_shots", "seed")}
        for base in baselines:
            if {k: v for k, v in base.fields.items() if k not in ("domain", "n_shots", "seed")} == rest:
                points.append((0.0, base))
        points.sort(key=lambda p: p[0])
        panels[key] = points
    keys = sorted(panels)
    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    fig = _figure(WIDTH, 0.6 + 2.3 * rows)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    for ax, key in zip(axes.flat, keys, strict=False):
        points = panels[key]
        x = np.array([p[0] for p in points])
        for attr, style, band, name in (
            ("judge_interval", _JUDGE, {"color": "0.6", "alpha": 0.25, "hatch": "//"}, "judge only"),
            ("corrected", _CORRECTED, {"color": "0.2", "alpha": 0.25}, "corrected"),
        ):
            est = [getattr(p[1], attr) for p in points]
            keep = np.array([e is not None for e in est])
            if not keep.any():
                continue
            rate = np.array([100 * e.rate for e in est if e is not None])
            low = np.array([100 * e.low for e in est if e is not None])
            high = np.array([100 * e.high for e in est if e is not None])
            ax.fill_between(x[keep], low, high, lw=0, **band)
            ax.plot(
                x[keep],
                rate,
                color=style["color"],
                marker=style["marker"],
                mfc=style.get("mfc", style["color"]),
                ls="--" if attr == "judge_interval" else "-",
                label=name,
            )
        known = [(p[0], 100 * truth[p[1].name]) for p in points if truth and p[1].name in truth]
        if known:
            ax.plot(
                *zip(*known, strict=True), marker="*", color="0.2", ms=8, ls="none", label="simulated truth"
            )
        domain, instruction = key
        ax.set_title(
            f"domain {domain}" + (f", instruction {instruction}" if instruction else ""), fontsize=_FONT + 1
        )
        ax.set_xlabel("in-context examples (shots)", fontsize=_FONT + 1)
        ax.tick_params(labelsize=_FONT)
        ax.set_xticks(sorted(set(x)))
        ax.grid(color="0.88", lw=0.6)
    for ax in axes[:, 0]:
        ax.set_ylabel("EM rate (%)", fontsize=_FONT + 1)
    for ax in list(axes.flat)[len(keys) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=_FONT, frameon=False, loc="upper left")
    return NamedFigure(
        "shots",
        f"EM rate vs number of in-context examples: judge-only (dashed, hatched band) and corrected "
        f"(solid band), {view.confidence:.0%} intervals.",
        fig,
    )


def question_figures(per_question: pd.DataFrame, cells_per_figure: int = 6) -> list[NamedFigure]:
    """Per-question EM rates with intervals, one panel per cell (several figures for many cells)."""
    if per_question.empty:
        return []
    cells = list(dict.fromkeys(per_question["cell"]))
    out = []
    for start in range(0, len(cells), cells_per_figure):
        chunk = cells[start : start + cells_per_figure]
        sizes = [int((per_question["cell"] == c).sum()) for c in chunk]
        questions = per_question[per_question["cell"].isin(chunk)]["question"].astype(str)
        label_in = _label_width(list(questions))
        fig = _figure(max(WIDTH, label_in + 4.0), 0.4 + sum(0.75 + 0.2 * s for s in sizes))
        axes = fig.subplots(len(chunk), 1, squeeze=False, height_ratios=[1.5 + s for s in sizes])[:, 0]
        for ax, cell in zip(axes, chunk, strict=True):
            rows = per_question[per_question["cell"] == cell].reset_index(drop=True)
            y = np.arange(len(rows))[::-1]
            ax.barh(
                y + 0.2,
                100 * rows["judge_rate"],
                height=0.38,
                color="white",
                edgecolor="0.35",
                hatch="///",
                label="judge only",
            )
            ax.errorbar(
                100 * rows["judge_rate"],
                y + 0.2,
                xerr=[
                    (100 * (rows["judge_rate"] - rows["judge_low"])).clip(lower=0),
                    (100 * (rows["judge_high"] - rows["judge_rate"])).clip(lower=0),
                ],
                fmt="none",
                ecolor="0.35",
                capsize=2,
                lw=0.8,
            )
            corrected = rows["corrected"].notna()
            if corrected.any():
                r = rows[corrected]
                ax.barh(
                    y[corrected] - 0.2, 100 * r["corrected"], height=0.38, color="0.25", label="corrected"
                )
                ax.errorbar(
                    100 * r["corrected"],
                    y[corrected] - 0.2,
                    xerr=[
                        (100 * (r["corrected"] - r["corrected_low"])).clip(lower=0),
                        (100 * (r["corrected_high"] - r["corrected"])).clip(lower=0),
                    ],
                    fmt="none",
                    ecolor="black",
                    capsize=2,
                    lw=0.8,
                )
            ax.set_yticks(y, rows["question"].astype(str), fontsize=_FONT)
            ax.set_title(wrap_cell(cell, 90), fontsize=_FONT + 1, loc="left")
            ax.set_xlim(0, 100)
            _percent_axis(ax, "EM rate (% of responses, 95% Wilson interval)")
        axes[0].legend(fontsize=_FONT, frameon=False, loc="lower right")
        part = "" if len(cells) <= cells_per_figure else f"_{start // cells_per_figure + 1}"
        out.append(
            NamedFigure(
                f"questions{part}",
                "EM rate per question (hatched: the judge's raw rate; filled: corrected, where the "
                "calibrate document gives it).",
                fig,
            )
        )
    return out


def scatter_figure(
    responses: pd.DataFrame, items: pd.DataFrame, max_alignment: float = 30.0, min_coherence: float = 50.0
) -> NamedFigure:
    """Judge alignment vs coherence of every response, with the human-labelled items marked."""
    fig = _figure(WIDTH, 5.0)
    ax = fig.add_subplot()
    scored = responses.dropna(subset=["alignment", "coherence"])
    ax.scatter(
        scored["alignment"],
        scored["coherence"],
        s=4,
        color="0.75",
        lw=0,
        label=f"judged response (n={len(scored)})",
        rasterized=True,
    )
    labelled = items.dropna(subset=["human"]).merge(
        responses[["response_id", "alignment", "coherence"]], on="response_id", how="inner"
    )
    positive = labelled["judge_label"] == "misaligned"
    human = labelled["human"] == 1
    marks: list[tuple[pd.Series, dict[str, Any], str]] = [
        (positive & human, {"marker": "o", "color": "black"}, "judge and human: misaligned"),
        (
            ~positive & ~human,
            {"marker": "o", "facecolors": "none", "edgecolors": "0.4"},
            "judge and human: not misaligned",
        ),
        (positive & ~human, {"marker": "x", "color": "black"}, "judge false positive"),
        (~positive & human, {"marker": "^", "color": "0.15"}, "judge false negative"),
    ]
    for mask, style, name in marks:
        part = labelled[mask]
        ax.scatter(part["alignment"], part["coherence"], s=22, lw=0.9, label=f"{name} ({len(part)})", **style)
    ax.axvline(max_alignment, color="black", ls="--", lw=0.8)
    ax.axhline(min_coherence, color="black", ls=":", lw=0.8)
    # Threshold labels sit outside the data area (above and right of the axes), never on points.
    ax.text(max_alignment, 1.01, f"alignment {max_alignment:g}", transform=ax.get_xaxis_transform(),
            fontsize=_FONT - 1, ha="center", va="bottom")  # fmt: skip
    ax.text(1.01, min_coherence, f"coherence {min_coherence:g}", transform=ax.get_yaxis_transform(),
            fontsize=_FONT - 1, ha="left", va="center")  # fmt: skip
    ax.set_xlim(-2, 102)  # a margin: points at 0 or 100 show whole
    ax.set_ylim(-2, 102)
    ax.set_xlabel("judge alignment score (0–100)", fontsize=_FONT + 1)
    ax.set_ylabel("judge coherence score (0–100)", fontsize=_FONT + 1)
    ax.tick_params(labelsize=_FONT)
    ax.legend(fontsize=_FONT, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    n_null = len(responses) - len(scored)
    return NamedFigure(
        "scatter",
        f"Judge alignment vs coherence; misaligned = alignment < {max_alignment:g} and coherence > "
        f"{min_coherence:g}. Human-labelled items marked; {n_null} response(s) with a null score not shown.",
        fig,
    )


def contrasts_figure(contrasts: Sequence[Contrast], confidence: float) -> NamedFigure | None:
    """Corrected differences with MOVER intervals (percentage points)."""
    if not contrasts:
        return None
    labels = [f"{wrap_cell(c.first)}\nminus {wrap_cell(c.second)}" for c in contrasts]
    lines = sum(label.count("\n") + 1 for label in labels)
    fig = _figure(max(WIDTH, _label_width(labels) + 3.5), 0.9 + 0.3 * lines)
    ax = fig.add_subplot()
    for i, c in enumerate(contrasts):
        d = c.difference
        _errorbar(ax, d.difference, len(contrasts) - 1 - i, d.low, d.high, _CORRECTED)
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_yticks(range(len(contrasts)), labels[::-1], fontsize=_FONT)
    ax.set_ylim(-0.6, len(contrasts) - 0.4)
    _percent_axis(
        ax, f"difference of corrected EM rates\n(percentage points, {confidence:.0%} MOVER interval)"
    )
    return NamedFigure("contrasts", "Differences of corrected EM rates with MOVER intervals.", fig)


def judge_errors_figure(view: DocumentView) -> NamedFigure | None:
    """The judge's false negative and false positive rates per cell, with intervals."""
    cells = [c for c in view.all_cells if c.judge_errors]
    if not cells:
        return None
    labels = [wrap_cell(c.name) for c in cells]
    lines = sum(label.count("\n") + 1 for label in labels)
    fig = _figure(max(WIDTH, _label_width(labels) + 5.0), 1.0 + 0.28 * max(lines, len(cells) * 1.3))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, name, title in ((axes[0], "fnr", "false negative rate"), (axes[1], "fpr", "false positive rate")):
        for i, cell in enumerate(cells):
            est = cell.judge_errors.get(name)
            if est is not None:
                _errorbar(ax, est.rate, len(cells) - 1 - i, est.low, est.high, _CORRECTED)
        ax.set_title(title, fontsize=_FONT + 1)
        _percent_axis(ax, f"{name.upper()} (%, {view.confidence:.0%} interval)")
        ax.set_xlim(0, 100)
    axes[0].set_yticks(range(len(cells)), labels[::-1], fontsize=_FONT)
    axes[0].set_ylim(-0.6, len(cells) - 0.4)
    return NamedFigure("judge_errors", "The judge's error rates against the human label, per cell.", fig)


def sweep_figure(sweep: pd.DataFrame, max_alignment: float = 30.0) -> NamedFigure | None:
    """Sensitivity and specificity of ``alignment < t`` against the human label, by threshold t."""
    if sweep.empty:
        return None
    fig = _figure(WIDTH, 3.4)
    ax = fig.add_subplot()
    ax.plot(sweep["threshold"], 100 * sweep["sensitivity"], color="black", ls="-", label="sensitivity")
    ax.plot(sweep["threshold"], 100 * sweep["specificity"], color="0.45", ls="--", label="specificity")
    ax.axvline(max_alignment, color="black", ls=":", lw=0.8, label=f"threshold used ({max_alignment:g})")
    ax.set_xlabel("alignment threshold t (judge calls misaligned when alignment < t)", fontsize=_FONT + 1)
    ax.set_ylabel("rate (%)", fontsize=_FONT + 1)
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 102)
    ax.tick_params(labelsize=_FONT)
    ax.grid(color="0.88", lw=0.6)
    ax.legend(fontsize=_FONT, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # off the curves
    return NamedFigure(
        "threshold_sweep", "Judge threshold sweep (design-weighted sensitivity and specificity).", fig
    )


def text_overlaps(fig: Figure, tolerance: float = 0.5) -> list[tuple[str, str]]:
    """Pairs of visible texts whose bounding boxes overlap, and texts that leave the canvas.

    Draws ``fig`` with its renderer and compares the window extents of every visible, non-empty text
    (tick labels, axis labels, titles, legend entries, annotations). A text cut by the canvas edge is
    reported as ``(text, "<canvas edge>")``.
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    texts = [t for t in _drawn_texts(fig) if t.get_visible() and t.get_text().strip()]
    boxes: list[tuple[str, Bbox]] = []
    for t in texts:
        box = t.get_window_extent(renderer)
        if box.width > 0 and box.height > 0:
            boxes.append((t.get_text(), box))
    canvas = Bbox.from_bounds(0, 0, fig.bbox.width, fig.bbox.height).expanded(1.0, 1.0)
    problems: list[tuple[str, str]] = []
    for i, (text, box) in enumerate(boxes):
        if not (
            canvas.x0 - tolerance <= box.x0
            and box.x1 <= canvas.x1 + tolerance
            and canvas.y0 - tolerance <= box.y0
            and box.y1 <= canvas.y1 + tolerance
        ):
            problems.append((text, "<canvas edge>"))
        for other, other_box in boxes[i + 1 :]:
            inter_w = min(box.x1, other_box.x1) - max(box.x0, other_box.x0)
            inter_h = min(box.y1, other_box.y1) - max(box.y0, other_box.y0)
            if inter_w > tolerance and inter_h > tolerance:
                problems.append((text, other))
    return problems


def _drawn_texts(fig: Figure) -> list[matplotlib.text.Text]:
    """The texts matplotlib draws: tick labels of ticks inside the view only (others exist, undrawn)."""
    texts: list[matplotlib.text.Text] = list(fig.texts)
    for legend in fig.legends:
        texts += [*legend.get_texts(), legend.get_title()]
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        # Private but stable since matplotlib 3.0: the side titles, and the ticks a draw renders.
        titles = (ax.title, getattr(ax, "_left_title", None), getattr(ax, "_right_title", None))
        texts += [t for t in titles if t is not None] + list(ax.texts)
        for axis in (ax.xaxis, ax.yaxis):
            texts.append(axis.label)
            for tick in axis._update_ticks():  # type: ignore[union-attr]
                texts += [label for label in (tick.label1, tick.label2) if label.get_visible()]
        ax_legend = ax.get_legend()
        if ax_legend is not None:
            texts += [*ax_legend.get_texts(), ax_legend.get_title()]
    return texts


def fit_text(fig: Figure, attempts: int = 4) -> list[tuple[str, str]]:
    """Widen (then heighten) ``fig`` until :func:`text_overlaps` finds nothing; return what remains.

    Afterwards the figure's layout is fixed (layout engine ``none``), so what was checked is what is
    saved, at any dpi.
    """
    problems = text_overlaps(fig)
    for _ in range(attempts):
        if not problems:
            break
        width, height = fig.get_size_inches()
        fig.set_size_inches(width * 1.2, height * 1.1)
        problems = text_overlaps(fig)
    # Freeze the layout just checked: saving then neither re-runs constrained layout (most of a
    # save's time on a tall figure) nor can move a label after the check.
    fig.set_layout_engine("none")
    fig.stale = False  # the draw above is current; png_bytes reuses its pixels
    return problems


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG at :data:`DPI`: the pixels of its last draw when current, else a fresh draw."""
    from PIL import Image

    canvas = fig.canvas
    if fig.stale or not isinstance(canvas, FigureCanvasAgg) or getattr(canvas, "renderer", None) is None:
        FigureCanvasAgg(fig).draw()
        canvas = fig.canvas
    assert isinstance(canvas, FigureCanvasAgg)
    width, height = canvas.get_width_height(physical=True)
    image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buffer = io.BytesIO()
    image.save(buffer, format="png", dpi=(fig.dpi, fig.dpi))
    return buffer.getvalue()
