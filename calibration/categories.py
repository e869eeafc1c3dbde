"""Rubric categories (e.g. reasoning-trace categories): design-weighted shares and agreement.

Under a rubric with its own label set (``emaudit study create --rubric``) each rating carries the
chosen categories. Each category is then a binary outcome of the item, estimated exactly like the
EM label: one human label per item and category (more than half of the item's raters chose it;
an even split is left out of that category's share, like an EM tie, and counted), and the
two-phase estimator over the judge strata (:func:`~emaudit.calibration.two_phase.two_phase_rate`,
Cochran §12) for the share of the cell's judged responses that show the category. Estimand:
``responses`` (these judged responses, phase 1 fixed); humans are truth; the judge only defines
the strata, so nothing was tuned on these labels.

Contrasts: for every two cells that differ in exactly one field (``reasoning=on`` vs ``off``, one
domain vs another), the difference of each category's share with a MOVER interval (Zou & Donner
2008; the cells are sampled independently, so :func:`~emaudit.calibration.contrasts.mover_difference`
applies).

Agreement: Krippendorff's alpha (nominal) per category on the chosen / not chosen indicator, and
for multi-select rubrics alpha with the MASI distance between the raters' sets (Passonneau 2006,
"Measuring agreement on set-valued items (MASI) for semantic and pragmatic annotation", LREC;
alpha for arbitrary distances: Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability").

All functions are pure, over DataFrames: ``items`` (``item, cell, stratum``, optional
``is_gold``), ``judged`` (``cell, stratum`` per response, or with a count column ``n``) and
``ratings`` (``item, rater, categories`` as a list of keys, optional ``created``: the latest
rating per item and rater counts).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from emaudit.calibration.agreement import krippendorff_alpha
from emaudit.calibration.contrasts import mover_difference
from emaudit.calibration.errors import CalibrationInputError, UndefinedStatisticError
from emaudit.calibration.estimate import Estimate
from emaudit.calibration.two_phase import two_phase_rate

CATEGORY_RULE = (
    "an item shows a category when more than half of its raters chose it; an even split is left "
    "out of that category's share (counted as n_tied)"
)


def masi_distance(first: frozenset[str], second: frozenset[str]) -> float:
    """MASI distance ``1 - J * M`` between two label sets (Passonneau 2006).

    ``J`` is the Jaccard index; ``M`` is 1 for equal sets, 2/3 when one contains the other, 1/3 when
    they overlap otherwise, 0 when disjoint. Two empty sets are equal (distance 0).

    Example:
        >>> round(masi_distance(frozenset({"a", "b"}), frozenset({"a"})), 4)  # 1 - (1/2)(2/3)
        0.6667
    """
    if first == second:
        return 0.0
    common = len(first & second)
    if common == 0:
        return 1.0
    monotonicity = 2 / 3 if common == min(len(first), len(second)) else 1 / 3
    return 1.0 - common / len(first | second) * monotonicity


def set_alpha(units: Sequence[Sequence[frozenset[str]]]) -> float:
    """Krippendorff's alpha with the MASI distance, ``1 - D_o / D_e`` (Krippendorff 2011).

    Args:
        units: Per unit (item), the label sets its raters gave; units with fewer than two are
            not pairable and are dropped.

    ``D_o = (1/n) sum_u 1/(m_u - 1) sum_{i != j in u} d(v_i, v_j)`` and
    ``D_e = 1/(n (n - 1)) sum_{i != j} d(v_i, v_j)`` over all ``n`` pairable values.

    Raises:
        CalibrationInputError: no unit has two ratings.
        ValueError: every pairable value is the same set (alpha is 0/0).
    """
    pairable = [list(u) for u in units if len(u) >= 2]
    if not pairable:
        raise CalibrationInputError("no item was rated by two raters: agreement needs overlap")
    values = [v for u in pairable for v in u]
    distinct = sorted(set(values), key=sorted)
    if len(distinct) < 2:
        raise ValueError("every rating is the same set: alpha is undefined (no variation)")
    index = {v: i for i, v in enumerate(distinct)}
    distance = np.array([[masi_distance(a, b) for b in distinct] for a in distinct])
    counts = np.bincount([index[v] for v in values], minlength=len(distinct)).astype(float)
    n = counts.sum()
    observed = sum(
        2 * distance[index[a], index[b]] / (len(u) - 1) for u in pairable for a, b in combinations(u, 2)
    )
    expected = float(counts @ distance @ counts) / (n * (n - 1))  # d(v, v) = 0: the diagonal adds 0
    return 1.0 - (observed / n) / expected


def latest_choices(ratings: pd.DataFrame) -> pd.DataFrame:
    """One row per (item, rater): the latest rating's categories as a frozenset (column ``chosen``)."""
    missing = {"item", "rater", "categories"} - set(ratings.columns)
    if missing:
        raise CalibrationInputError(
            f"ratings need columns item, rater, categories; missing {sorted(missing)}"
        )
    frame = ratings.sort_values("created", kind="stable") if "created" in ratings.columns else ratings
    frame = frame.drop_duplicates(["item", "rater"], keep="last")
    frame = frame[frame["categories"].map(lambda c: isinstance(c, list | tuple))]
    return frame.assign(chosen=frame["categories"].map(frozenset))[["item", "rater", "chosen"]]


def item_categories(ratings: pd.DataFrame, categories: Sequence[str]) -> pd.DataFrame:
    """Per item and category: the human label (1 / 0, or NaN for an even split) and the vote counts.

    Returns:
        Indexed by item, columns ``n_ratings`` and per category ``<key>`` (1.0, 0.0 or NaN).
    """
    latest = latest_choices(ratings)
    n_ratings = latest.groupby("item", sort=True).size()
    chosen = latest.assign(key=latest["chosen"].map(list)).explode("key")
    votes = (
        chosen[chosen["key"].isin(list(categories))]
        .groupby(["item", "key"])
        .size()
        .unstack(fill_value=0)
        .reindex(index=n_ratings.index, columns=list(categories), fill_value=0)
    )
    table = pd.DataFrame({"n_ratings": n_ratings})
    for key in categories:
        twice = 2 * votes[key].to_numpy()
        total = n_ratings.to_numpy()
        table[key] = np.where(twice > total, 1.0, np.where(twice < total, 0.0, np.nan))
    return table


def _population(judged: pd.DataFrame) -> pd.DataFrame:
    if "n" in judged.columns:
        return judged.groupby(["cell", "stratum"], sort=True)["n"].sum().rename("N").reset_index()
    return judged.groupby(["cell", "stratum"], sort=True).size().rename("N").reset_index()


def _share(counts: pd.DataFrame, confidence: float) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "n_labelled": int(counts["n_labelled"].sum()),
        "n_positive": int(counts["n_positive"].sum()),
        "n_tied": int(counts["n_tied"].sum()),
        "strata": [
            {k: (v if isinstance(v, str) else int(v)) for k, v in row.items() if k != "cell"}
            for row in counts.to_dict("records")
        ],
    }
    try:
        entry["share"] = two_phase_rate(
            counts["N"], counts["n_labelled"], counts["n_positive"], confidence
        ).to_dict()
    except CalibrationInputError as error:
        entry["share"] = {"error": str(error)}
    return entry


def category_shares(
    judged: pd.DataFrame,
    items: pd.DataFrame,
    ratings: pd.DataFrame,
    categories: Sequence[str],
    *,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Design-weighted share of each category per cell and overall, with two-phase intervals.

    Returns:
        ``{"cells": [{"cell", "categories": {key: entry}}], "overall": {key: entry}}``; an entry has
        ``share`` (an Estimate dict, or ``{"error": why}``), ``n_labelled``, ``n_positive``,
        ``n_tied`` and per stratum ``N, n_labelled, n_positive, n_tied``. Overall pools every
        (cell, stratum) as its own stratum.
    """
    gold = (
        items["is_gold"].astype(bool) if "is_gold" in items.columns else pd.Series(False, index=items.index)
    )
    sample = items.loc[~gold.to_numpy()].set_index("item")
    labels = item_categories(ratings, categories)
    population = _population(judged)
    joined = sample.join(labels, how="left")
    cells: dict[Any, dict[str, Any]] = {}
    overall: dict[str, Any] = {}
    for key in categories:
        per = (
            joined.groupby(["cell", "stratum"], sort=True)[key]
            .agg(n_labelled="count", n_positive="sum")
            .reset_index()
        )
        tied = joined[joined["n_ratings"].notna() & joined[key].isna()]
        per = per.merge(
            tied.groupby(["cell", "stratum"]).size().rename("n_tied").reset_index(),
            on=["cell", "stratum"],
            how="left",
        )
        counts = population.merge(per, on=["cell", "stratum"], how="left").fillna(0)
        for column in ("N", "n_labelled", "n_positive", "n_tied"):
            counts[column] = counts[column].astype(np.int64)
        for cell, group in counts.groupby("cell", sort=True):
            cells.setdefault(cell, {})[key] = _share(group, confidence)
        pooled = counts.assign(stratum=counts["cell"].astype(str) + "/" + counts["stratum"].astype(str))
        overall[key] = _share(pooled, confidence)
    return {
        "cells": [{"cell": cell, "categories": entry} for cell, entry in cells.items()],
        "overall": overall,
    }


def category_agreement(
    ratings: pd.DataFrame,
    categories: Sequence[str],
    *,
    multiple: bool = True,
    confidence: float = 0.95,
    n_boot: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Krippendorff's alpha (nominal) per category, and MASI-distance alpha for multi-select sets.

    Returns:
        ``{"per_category": {key: AgreementEstimate dict or {"error": why}}, "masi": {"value"} or
        {"error"}}`` (``masi`` only when ``multiple``).
    """
    latest = latest_choices(ratings)
    raters = sorted(latest["rater"].unique(), key=str)
    items = sorted(latest["item"].unique(), key=str)
    wide = latest.pivot(index="rater", columns="item", values="chosen").reindex(index=raters, columns=items)
    per_category: dict[str, Any] = {}
    for key in categories:
        matrix = wide.map(lambda s, key=key: np.nan if not isinstance(s, frozenset) else float(key in s))
        try:
            per_category[key] = krippendorff_alpha(
                matrix.to_numpy(dtype=float), "nominal", confidence=confidence, n_boot=n_boot, seed=seed
            ).to_dict()
        except (CalibrationInputError, UndefinedStatisticError) as error:  # say why, never NaN
            per_category[key] = {"error": str(error)}
    out: dict[str, Any] = {"per_category": per_category}
    if multiple:
        units = [list(group) for _, group in latest.groupby("item", sort=True)["chosen"]]
        try:
            out["masi"] = {"value": set_alpha(units), "method": "krippendorff_alpha_masi"}
        except (CalibrationInputError, ValueError) as error:
            out["masi"] = {"error": str(error)}
    return out


def _fields(cell: str) -> dict[str, str]:
    from emaudit.calibration.report_view import parse_cell_name

    return parse_cell_name(str(cell))


def _estimate(entry: dict[str, Any]) -> Estimate:
    return Estimate(entry["rate"], entry["low"], entry["high"], entry["method"], entry["confidence"])


def category_contrasts(cells: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Differences of category shares between cells that differ in exactly one field.

    Args:
        cells: The ``cells`` of :func:`category_shares` (``{"cell", "categories": {key: entry}}``).

    Returns:
        One row per (category, pair of cells): ``category``, ``field`` (the one field that differs),
        ``first`` and ``second`` (cell names, in sorted order; the difference is ``first - second``)
        and ``difference`` (a :class:`~emaudit.calibration.contrasts.Difference` dict, or
        ``{"error": why}`` when either share is undefined).
    """
    out: list[dict[str, Any]] = []
    for a, b in combinations(sorted(cells, key=lambda c: str(c["cell"])), 2):
        fa, fb = _fields(a["cell"]), _fields(b["cell"])
        differing = [k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k)]
        if len(differing) != 1:
            continue
        for key in a["categories"].keys() & b["categories"].keys():
            first, second = a["categories"][key]["share"], b["categories"][key]["share"]
            row: dict[str, Any] = {
                "category": key,
                "field": differing[0],
                "first": a["cell"],
                "second": b["cell"],
            }
            if "error" in first or "error" in second:
                row["difference"] = {"error": first.get("error") or second.get("error")}
            else:
                row["difference"] = mover_difference(
                    _estimate(first), _estimate(second), estimand="responses"
                ).to_dict()
            out.append(row)
    return sorted(out, key=lambda r: (r["category"], r["field"], str(r["first"]), str(r["second"])))


def categories_section(
    judged: pd.DataFrame,
    items: pd.DataFrame,
    ratings: pd.DataFrame,
    categories: Sequence[str],
    *,
    multiple: bool = True,
    confidence: float = 0.95,
    n_boot: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """The ``categories`` field of the calibrate document: rule, shares and agreement."""
    shares = category_shares(judged, items, ratings, categories, confidence=confidence)
    return {
        "labels": list(categories),
        "multiple": multiple,
        "rule": CATEGORY_RULE,
        "estimand": "responses: the share of these judged responses (phase 1 fixed) showing the "
        "category; humans are truth; two-phase estimator, MOVER-Wilson",
        **shares,
        "contrasts": category_contrasts(shares["cells"]),
        "agreement": category_agreement(
            ratings, categories, multiple=multiple, confidence=confidence, n_boot=n_boot, seed=seed
        ),
    }
