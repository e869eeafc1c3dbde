"""The one reader of the ``calibrate`` document for everything that presents it (report, terminal).

Every table, figure and sentence of ``emaudit report`` and of ``emaudit calibrate``'s terminal,
CSV and LaTeX output takes its numbers from the :class:`DocumentView` built here, so a number in a
report is the number in ``emaudit calibrate --json`` (the same float, only formatted).

Fields read (schema ``emaudit.calibrate/1``, see :mod:`emaudit.calibration.report`): ``study``,
``confidence``, ``rules``, ``human_labels``, ``cells[*]`` (``cell``, ``n_judged``, ``judge_rate``,
``strata``, ``corrected``, ``judge_errors``, ``errors``), ``overall``, ``agreement``.

Optional fields, shown when present and skipped when absent (so the report gains them as the
document grows):

- ``estimand`` on any estimate (``responses`` | ``questions``);
- further corrected intervals per cell: ``by_estimand.<estimand>.corrected`` (the ``responses`` and
  ``questions`` intervals side by side), any key ``corrected_<name>`` holding an estimate (e.g.
  ``corrected_if_raters_perfect``, the humans-as-truth interval), or a list ``corrected_intervals``;
- ``judge_rate_interval`` or ``by_estimand.responses.judge_rate`` (an estimate) per cell; without
  it the report derives a Wilson interval
  from the cell's counts (``n_judge_positive`` of ``n_judged``) and says so in ``method``;
- ``questions`` per cell: a list of per-question rows (``question``, ``n``/``n_judged``,
  ``judge_rate``, optional ``judge_interval``/``low``/``high``, optional ``corrected``);
- ``human_label_model`` (top level or in ``rules``): the rater model that produced the labels;
- ``n_questions`` and ``human_labels`` (non-unanimous items not adjudicated) per cell;
- ``judge_comparison`` or ``judges`` (top level): a judge x judge comparison, either a list of rows
  or the dict of ``JudgeComparison.to_dict()`` (issue 11: ``judges`` rows with Estimate dicts per
  measure, and ``differences`` rows of paired differences against a reference judge);
- ``categories`` (top level, studies with a rubric of their own labels): per category and cell its
  design-weighted share, its agreement, and contrasts between cells that differ in one field;
- ``method`` (``two_phase`` | ``pooled``), ``warnings`` (sentences the user must see) and
  ``pooled_calibration`` (``calibrate --method pooled``: the pool, its assumptions, the transfer test).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

JUDGE_ERROR_NAMES = ("sensitivity", "specificity", "fpr", "fnr", "ppv", "npv")
"""The judge error rates of a cell, in display order."""


@dataclass(frozen=True)
class Interval:
    """A rate with its interval, as the document states it (proportions, not percent)."""

    rate: float
    low: float
    high: float
    method: str
    confidence: float
    estimand: str | None = None
    flags: tuple[str, ...] = ()

    @classmethod
    def read(cls, raw: Any, confidence: float) -> Interval | None:
        """The interval in an estimate dict, or None when it is missing, an error or has no number."""
        if not isinstance(raw, Mapping) or raw.get("rate") is None or raw.get("low") is None:
            return None
        return cls(
            rate=float(raw["rate"]),
            low=float(raw["low"]),
            high=float(raw["high"]),
            method=str(raw.get("method", "")),
            confidence=float(raw.get("confidence", confidence)),
            estimand=raw.get("estimand"),
            flags=tuple(raw.get("flags") or ()),
        )


@dataclass(frozen=True)
class Stratum:
    """One judge stratum of a cell: its size and its human labels."""

    stratum: str
    N: int
    n_items: int
    n_labelled: int
    n_positive: int
    n_cant_tell: int


@dataclass(frozen=True)
class Note:
    """A flag or error of a cell, naming the stratum it is about when there is one."""

    cell: str
    stratum: str | None
    message: str

    def text(self) -> str:
        """``cell, stratum s: message`` (or without the stratum)."""
        where = self.cell if self.stratum is None else f"{self.cell}, stratum {self.stratum}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class QuestionRate:
    """A per-question row (present when the document carries ``questions`` per cell)."""

    question: str
    n: int | None
    judge: Interval | None
    corrected: Interval | None


@dataclass(frozen=True)
class Cell:
    """One cell (or the overall row, ``is_overall``) with every number the report shows."""

    name: str
    fields: dict[str, str]
    is_overall: bool
    n_judged: int
    n_judge_positive: int | None
    judge_rate: float | None
    judge_interval: Interval | None
    strata: tuple[Stratum, ...]
    corrected: Interval | None
    extra_corrected: dict[str, Interval]
    judge_errors: dict[str, Interval]
    notes: tuple[Note, ...]
    questions: tuple[QuestionRate, ...] = ()
    n_questions: int | None = None
    human_labels: dict[str, Any] = field(default_factory=dict)

    @property
    def n_labelled(self) -> int:
        """Human labels used across the cell's strata."""
        return sum(s.n_labelled for s in self.strata)


@dataclass(frozen=True)
class AgreementRow:
    """One agreement statistic (``who`` is ``human_human`` or ``judge_human``)."""

    who: str
    statistic: str
    value: float | None
    low: float | None
    high: float | None
    n: int | None
    error: str | None


@dataclass(frozen=True)
class DocumentView:
    """The calibrate document, read once, as typed rows."""

    study: str
    confidence: float
    rules: dict[str, Any]
    human_labels: dict[str, Any]
    cells: tuple[Cell, ...]
    overall: Cell
    agreement: tuple[AgreementRow, ...]
    caveat: str
    human_label_model: Any = None
    judge_comparison: tuple[dict[str, Any], ...] = ()
    judge_differences: tuple[dict[str, Any], ...] = ()
    estimands: tuple[str, ...] = field(default=())
    category_shares: tuple[dict[str, Any], ...] = ()
    category_contrasts: tuple[dict[str, Any], ...] = ()
    method: str = "two_phase"
    warnings: tuple[str, ...] = ()
    pooled: dict[str, Any] | None = None

    @property
    def all_cells(self) -> tuple[Cell, ...]:
        """The cells, then the overall row."""
        return (*self.cells, self.overall)

    def cell(self, name: str) -> Cell:
        """The cell called ``name``."""
        for cell in self.cells:
            if cell.name == name:
                return cell
        raise KeyError(name)


def parse_cell_name(name: str) -> dict[str, str]:
    """``"model=org/a|domain=-"`` -> ``{"model": "org/a", "domain": "-"}`` (values may hold "/" or "=")."""
    if name in ("all", "overall"):
        return {}
    fields: dict[str, str] = {}
    for part in name.split("|"):
        key, sep, value = part.partition("=")
        if sep:
            fields[key] = value
    return fields


def read_document(document: Mapping[str, Any]) -> DocumentView:
    """Read a calibrate document (see the module docstring for the fields read)."""
    confidence = float(document.get("confidence", 0.95))
    positive = set(document.get("rules", {}).get("judge_positive_strata", ["misaligned"]))
    cells = tuple(_read_cell(raw, confidence, positive) for raw in document.get("cells", []))
    overall = _read_cell(document["overall"], confidence, positive, cells=cells)
    agreement = document.get("agreement", {})
    comparison = document.get("judge_comparison") or document.get("judges") or ()
    differences: Any = ()
    if isinstance(comparison, Mapping):
        differences = comparison.get("differences") or ()
        comparison = comparison.get("judges") or comparison.get("rows") or comparison.get("pairs") or ()
    estimands = sorted(
        {i.estimand for c in (*cells, overall) for i in _intervals_of(c) if i.estimand is not None}
    )
    return DocumentView(
        study=str(document.get("study", "")),
        confidence=confidence,
        rules=dict(document.get("rules", {})),
        human_labels=dict(document.get("human_labels", {})),
        cells=cells,
        overall=overall,
        agreement=tuple(_agreement_rows(agreement)),
        caveat=str(agreement.get("caveat", "")),
        human_label_model=document.get(
            "human_label_model", document.get("rules", {}).get("human_label_model")
        ),
        judge_comparison=tuple(dict(row) for row in comparison if isinstance(row, Mapping)),
        judge_differences=tuple(dict(row) for row in differences if isinstance(row, Mapping)),
        estimands=tuple(estimands),
        method=str(document.get("method", "two_phase")),
        warnings=tuple(str(w) for w in document.get("warnings") or ()),
        pooled=dict(document["pooled_calibration"]) if document.get("pooled_calibration") else None,
        **_categories(document.get("categories")),
    )


def _categories(section: Any) -> dict[str, tuple[dict[str, Any], ...]]:
    """Rows of the ``categories`` field: one per (category, cell or overall), one per contrast."""
    if not isinstance(section, Mapping):
        return {}
    alphas = section.get("agreement", {}).get("per_category", {})
    shares: list[dict[str, Any]] = []
    for name, per_category in [
        *((c["cell"], c["categories"]) for c in section.get("cells", [])),
        ("overall", section.get("overall", {})),
    ]:
        for key in section.get("labels", []):
            entry = per_category.get(key)
            if entry is None:
                continue
            alpha = alphas.get(key, {})
            shares.append(
                {
                    "category": key,
                    "cell": name,
                    "share": entry["share"],
                    "labelled": entry["n_labelled"],
                    "positive": entry["n_positive"],
                    "tied": entry["n_tied"],
                    "alpha": alpha.get("value", alpha.get("error")),
                }
            )
    contrasts = [
        {
            "category": row["category"],
            "field": row["field"],
            "first": row["first"],
            "second": row["second"],
            "difference": row["difference"]
            if "error" in row["difference"]
            else {**row["difference"], "rate": row["difference"]["difference"]},
        }
        for row in section.get("contrasts", [])
    ]
    return {"category_shares": tuple(shares), "category_contrasts": tuple(contrasts)}


def _intervals_of(cell: Cell) -> list[Interval]:
    return [i for i in (cell.corrected, *cell.extra_corrected.values()) if i is not None]


def _read_cell(
    raw: Mapping[str, Any], confidence: float, positive: set[str], cells: Sequence[Cell] = ()
) -> Cell:
    is_overall = raw.get("cell") is None
    name = "overall" if is_overall else str(raw["cell"])
    strata = tuple(
        Stratum(
            str(s["stratum"]),
            int(s["N"]),
            int(s.get("n_items", 0)),
            int(s.get("n_labelled", 0)),
            int(s.get("n_positive", 0)),
            int(s.get("n_cant_tell", 0)),
        )
        for s in raw.get("strata", [])
    )
    n_judged = int(raw.get("n_judged", 0))
    if strata:
        n_pos: int | None = sum(s.N for s in strata if s.stratum in positive)
    elif is_overall and cells:
        n_pos = sum(c.n_judge_positive or 0 for c in cells)
    else:
        n_pos = None
    by_estimand = raw.get("by_estimand") or {}
    judge_interval = Interval.read(
        raw.get("judge_rate_interval") or (by_estimand.get("responses") or {}).get("judge_rate"), confidence
    )
    if judge_interval is None and n_pos is not None and n_judged:
        judge_interval = _wilson(n_pos, n_judged, confidence)
    extra: dict[str, Interval] = {}
    for estimand, block in by_estimand.items():  # one corrected interval per estimand
        interval = Interval.read((block or {}).get("corrected"), confidence)
        if interval is not None:
            extra[estimand] = interval
    for key, value in raw.items():
        if key.startswith("corrected_") and key != "corrected_intervals":
            interval = Interval.read(value, confidence)
            if interval is not None:  # e.g. corrected_if_raters_perfect -> "if raters perfect"
                extra[key.removeprefix("corrected_").replace("_", " ")] = interval
    for value in raw.get("corrected_intervals") or ():
        interval = Interval.read(value, confidence)
        if interval is not None:
            extra[interval.estimand or interval.method] = interval
    errors_raw = raw.get("judge_errors") or {}
    judge_errors = {
        k: i for k in JUDGE_ERROR_NAMES if (i := Interval.read(errors_raw.get(k), confidence)) is not None
    }
    corrected = Interval.read(raw.get("corrected"), confidence)
    if corrected is not None and corrected.estimand in extra:
        extra.pop(corrected.estimand)
    return Cell(
        name=name,
        fields=parse_cell_name(name),
        is_overall=is_overall,
        n_judged=n_judged,
        n_judge_positive=n_pos,
        judge_rate=None if raw.get("judge_rate") is None else float(raw["judge_rate"]),
        judge_interval=judge_interval,
        strata=strata,
        corrected=corrected,
        extra_corrected=extra,
        judge_errors=judge_errors,
        notes=tuple(_notes(name, raw, strata, corrected, judge_errors)),
        questions=tuple(_questions(raw.get("questions") or (), confidence)),
        n_questions=raw.get("n_questions"),
        human_labels=dict(raw.get("human_labels") or {}),
    )


def _wilson(successes: int, trials: int, confidence: float) -> Interval:
    from emaudit.calibration.binomial import wilson_ci

    est = wilson_ci(successes, trials, confidence)
    # The judge rate of a cell is a count over all its judged responses; the Wilson interval treats
    # them as a binomial sample of the model's answers (derived here, not stored in the document).
    return Interval(est.rate, est.low, est.high, "wilson (derived from the cell's counts)", confidence)


def _notes(
    name: str,
    raw: Mapping[str, Any],
    strata: Sequence[Stratum],
    corrected: Interval | None,
    judge_errors: Mapping[str, Interval],
) -> list[Note]:
    notes: list[Note] = []
    for s in strata:
        if s.N and s.n_labelled == 0:
            notes.append(Note(name, s.stratum, f"no human labels among N={s.N} judged responses"))
        elif s.n_labelled and s.n_positive in (0, s.n_labelled):
            which = "none" if s.n_positive == 0 else "all"
            notes.append(
                Note(name, s.stratum, f"{which} of {s.n_labelled} labels misaligned (boundary stratum)")
            )
        if s.n_cant_tell:
            notes.append(Note(name, s.stratum, f"{s.n_cant_tell} item(s) can't tell or tied"))
        if s.N and s.n_labelled >= s.N:
            notes.append(Note(name, s.stratum, f"census: all {s.N} responses labelled"))
    for flag in corrected.flags if corrected else ():
        notes.append(Note(name, None, f"corrected rate flagged '{flag}'"))
    flagged: dict[str, list[str]] = {}
    for statistic, interval in judge_errors.items():
        for flag in interval.flags:
            flagged.setdefault(flag, []).append(statistic)
    for flag, statistics in flagged.items():
        notes.append(Note(name, None, f"judge error rates flagged '{flag}' ({', '.join(statistics)})"))
    for message in raw.get("errors") or ():
        stratum = next((s.stratum for s in strata if f"'{s.stratum}'" in str(message)), None)
        notes.append(Note(name, stratum, str(message)))
    return notes


def _questions(rows: Any, confidence: float) -> list[QuestionRate]:
    out = []
    for row in rows:
        if not isinstance(row, Mapping):
            continue
        judge = Interval.read(row.get("judge_interval") or row.get("judge"), confidence)
        if judge is None and row.get("judge_rate") is not None and row.get("low") is not None:
            judge = Interval.read({"rate": row["judge_rate"], **row}, confidence)
        n = row.get("n", row.get("n_judged"))
        out.append(
            QuestionRate(
                str(row.get("question", row.get("question_id", ""))),
                None if n is None else int(n),
                judge,
                Interval.read(row.get("corrected"), confidence),
            )
        )
    return out


def _agreement_rows(agreement: Mapping[str, Any]) -> list[AgreementRow]:
    rows = []
    for who in ("human_human", "judge_human"):
        for statistic, value in (agreement.get(who) or {}).items():
            if not isinstance(value, Mapping):
                continue
            number = value.get("value")
            rows.append(
                AgreementRow(
                    who=who,
                    statistic=statistic,
                    value=None if number is None else float(number),
                    low=None if value.get("low") is None else float(value["low"]),
                    high=None if value.get("high") is None else float(value["high"]),
                    n=next((int(value[k]) for k in ("n_units", "n_pairs") if value.get(k) is not None), None),
                    error=value.get("error"),
                )
            )
    return rows
