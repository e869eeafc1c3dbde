"""Drawing a study: the sampling frame, its strata, a seeded stratified sample, and extending it.

Strata are the judge label (misaligned / aligned / incoherent / null score; DESIGN §4.3), or bands
of the judge's alignment score (``score_band``: misaligned, ``near_30_60``, ``clean_60_100``,
incoherent, null; issue 10), crossed with chosen cell keys (``model``, ``domain``, ...). Within each
stratum the items are a simple random sample without replacement, so every sampled response of
stratum h has inclusion probability n_h / N_h, which is stored on the item for the estimators.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
from sqlalchemy import Integer, cast, func, insert, inspect, select, update
from sqlmodel import Session

from emaudit.annotate._tables import ITEM, STUDY
from emaudit.annotate.allocation import (
    DEFAULT_BAND_RATES,
    DEFAULT_EXPECTED_RATES,
    allocate,
    bernoulli_sd,
    expected_rate,
    largest_remainder,
    parse_allocation,
)
from emaudit.annotate.design_check import cell_name, empty_cell_warnings
from emaudit.annotate.gold import GOLD_STRATUM, GoldSpec, gold_item_rows, n_gold_for
from emaudit.annotate.rubric import Rubric
from emaudit.errors import EmauditError
from emaudit.frames import Frame, load_frame, resolve_judge_model
from emaudit.labels import (
    DEFAULT_BAND_EDGES,
    DEFAULT_MAX_ALIGNMENT,
    DEFAULT_MIN_COHERENCE,
    JUDGE_LABEL,
    SCORE_BAND,
)
from emaudit.models import Study, StudyItem

__all__ = [  # the frame itself is core (emaudit.frames): calibration and judge rebuild it too
    "Draw",
    "ExtensionState",
    "Frame",
    "StratumDesign",
    "StudyDesign",
    "create_study",
    "draw_sample",
    "extend_study",
    "extension_state",
    "get_study",
    "load_frame",
    "resolve_judge_model",
    "study_design",
]

Draw = tuple[int, str, float]
"""One sampled response: its id, its stratum and its inclusion probability."""


@dataclass
class StratumDesign:
    """One row of a study's design table."""

    name: str
    values: dict[str, Any]
    population: int
    sampled: int
    inclusion_prob: float
    items_complete: int = 0
    ratings: int = 0

    @property
    def note(self) -> str:
        """A warning when the stratum has no sampled item (no estimate can cover it)."""
        return "not sampled: use min:N to cover it" if self.sampled == 0 else ""


@dataclass
class StudyDesign:
    """What ``emaudit study show`` prints."""

    study: str
    judge_model: str | None
    allocation: str
    overlap: int
    strata: list[StratumDesign]
    gold_items: int
    not_sampleable: dict[str, int] = field(default_factory=dict)


def stratum_rates(frame: Frame, expected_rates: Mapping[str, float] | None = None) -> dict[str, float]:
    """Anticipated human-positive rate per stratum, from its judge label or score band.

    Defaults: :data:`DEFAULT_EXPECTED_RATES` per judge label and
    :data:`emaudit.labels.DEFAULT_BAND_RATES` per score band; ``expected_rates``
    overrides them by label (``misaligned``), band kind (``near``, ``clean``) or band (``near_30_60``).
    """
    given = dict(expected_rates or {})
    labels = {str(v.get(JUDGE_LABEL, v.get(SCORE_BAND))) for v in frame.values.values()}
    known = set(DEFAULT_EXPECTED_RATES) | set(DEFAULT_BAND_RATES) | labels
    unknown = sorted(set(given) - known)
    if unknown:
        raise EmauditError(
            f"--expected-rate names unknown judge labels or score bands {unknown}; "
            f"use {', '.join(sorted(known - {'None'}))}"
        )
    for key, rate in given.items():
        if not 0 <= rate <= 1:
            raise EmauditError(f"--expected-rate {key}={rate:g} is not a proportion between 0 and 1")
    out = {}
    for name, vals in frame.values.items():
        label = vals.get(JUDGE_LABEL, vals.get(SCORE_BAND))
        out[name] = 0.5 if label is None else expected_rate(str(label), given)
    return out


def neyman_sds(frame: Frame, expected_rates: Mapping[str, float] | None = None) -> dict[str, float]:
    """Anticipated SD sqrt(p(1-p)) per stratum from the expected human-positive rate of its judge label."""
    return {name: bernoulli_sd(rate) for name, rate in stratum_rates(frame, expected_rates).items()}


def draw_sample(frame: Frame, sample_sizes: Mapping[str, int], rng: np.random.Generator) -> list[Draw]:
    """A stratified simple random sample without replacement from ``frame``.

    Strata are visited in name order and each draws ``rng.choice(members, n_h, replace=False)``
    from its ids in ascending order, so the sample is a function of the seed and the frame alone.

    Returns:
        ``(response_id, stratum, inclusion probability n_h/N_h)`` per sampled response.
    """
    sizes = frame.sizes()
    chosen: list[Draw] = []
    for stratum in sorted(sample_sizes):
        picked = rng.choice(frame.members(stratum), size=sample_sizes[stratum], replace=False)
        prob = sample_sizes[stratum] / sizes[stratum]
        chosen += [(int(rid), stratum, prob) for rid in sorted(picked)]
    return chosen


def get_study(session: Session, study: Study | int | str) -> Study:
    """A study by row, id or name, attached to ``session``; a clear error when there is none."""
    if isinstance(study, Study):
        identity = inspect(study).identity
        study = int(identity[0]) if identity else study.name
    if isinstance(study, int):
        found = session.get(Study, study)
    else:
        found = session.execute(select(Study).where(STUDY.c.name == study)).scalars().first()
    if found is None:
        names = session.execute(select(STUDY.c.name).order_by(STUDY.c.name)).scalars().all()
        known = f"; known studies: {', '.join(names)}" if names else "; there are no studies yet"
        raise EmauditError(f"unknown study {study!r}{known}")
    return found


def create_study(
    session: Session,
    name: str,
    *,
    strata_keys: Sequence[str] = (JUDGE_LABEL,),
    allocation: str = "equal",
    total: int | None = None,
    per_stratum: int | None = None,
    overlap: int = 1,
    seed: int = 0,
    judge_model: str | None = None,
    expected_rates: Mapping[str, float] | None = None,
    gold: Sequence[GoldSpec] = (),
    gold_rate: float | None = None,
    lease_seconds: int = 900,
    rater_quota: int | None = None,
    completion_code: str | None = None,
    max_alignment: float = DEFAULT_MAX_ALIGNMENT,
    min_coherence: float = DEFAULT_MIN_COHERENCE,
    tuning_share: float = 0.0,
    rubric: Rubric | None = None,
    require_reasoning: bool = False,
    warn: Callable[[str], None] | None = None,
    planned_sizes: Mapping[str, int] | None = None,
    band_edges: Sequence[float] = DEFAULT_BAND_EDGES,
) -> Study:
    """Draw a stratified sample of judged responses into a new study (DESIGN §4.3).

    Args:
        session: A session in a write transaction; the caller commits.
        name: Unique study name.
        strata_keys: ``judge_label`` or ``score_band``, and/or cell keys (``model``, ``domain``, ...).
        allocation: ``equal``, ``proportional``, ``neyman``, ``neyman+min:N``, ``halfwidth``,
            ``halfwidth+min:N`` or ``min:N`` (see :func:`allocate`).
        total: Total number of (non-gold) items.
        per_stratum: Items per stratum (``equal`` only).
        overlap: K, the number of raters who rate each item.
        seed: Seeds the draw and the display order (numpy ``Generator``), so a study is reproducible.
        judge_model: Whose scores define the judge strata; required when several judges scored.
        expected_rates: Per judge label, the anticipated human-misaligned rate for Neyman allocation
            (default :data:`DEFAULT_EXPECTED_RATES`).
        gold: Candidate gold items; ``gold_rate`` of the items a rater sees are drawn from them.
        gold_rate: Share of gold items among all items (default 0.1 when ``gold`` is given).
        lease_seconds: How long a claim is held before it returns to the pool.
        rater_quota: Default per-rater quota for raters created by crowd links.
        completion_code: Shown to crowd raters at the end (default: random).
        max_alignment: Judge alignment below this is misaligned.
        min_coherence: Judge coherence at or below this is incoherent.
        tuning_share: Share of each stratum's sampled items set aside as the tuning split
            (``design["tuning"]``: their labels choose judge thresholds and are left out of the
            comparison's estimates); drawn with its own seed, so the sample itself is unchanged.
        rubric: What raters see and answer (:mod:`emaudit.annotate.rubric`); None: the EM rubric.
        require_reasoning: Sample only responses with reasoning text (see :func:`load_frame`).
        warn: Called, before anything is stored, with one line per cell the design leaves without an
            estimate (:func:`emaudit.annotate.design_check.empty_cell_warnings`).
        planned_sizes: ``n_h`` per stratum from ``emaudit plan --study-strata ... --json`` (its
            ``sample_sizes``), used instead of ``allocation`` (recorded as ``plan``).
        band_edges: With ``score_band``: the band edges above ``max_alignment`` (default 60).

    Returns:
        The new :class:`Study` (flushed, so it has an id).
    """
    if not 0.0 <= tuning_share < 1.0:
        raise EmauditError(f"--tuning-share must be in [0, 1), got {tuning_share:g}")
    if overlap < 1:
        raise EmauditError(f"--overlap must be at least 1 (raters per item), got {overlap}")
    if lease_seconds < 1:
        raise EmauditError(f"the lease must be at least 1 second, got {lease_seconds}")
    if rater_quota is not None and rater_quota < 1:
        raise EmauditError(f"the rater quota must be at least 1, got {rater_quota}")
    if not name.strip():
        raise EmauditError("the study needs a name")
    if session.execute(select(STUDY.c.id).where(STUDY.c.name == name)).first() is not None:
        raise EmauditError(
            f"a study named {name!r} exists; choose another name or use 'emaudit study extend'"
        )
    keys = list(dict.fromkeys(k.strip() for k in strata_keys if k.strip()))
    if not keys:
        raise EmauditError(f"give at least one strata key, e.g. --strata {JUDGE_LABEL}")
    kind, _ = parse_allocation(allocation)
    model = resolve_judge_model(session, judge_model)
    frame = load_frame(
        session,
        judge_model=model,
        strata_keys=keys,
        max_alignment=max_alignment,
        min_coherence=min_coherence,
        require_reasoning=require_reasoning,
        band_edges=band_edges,
    )
    sizes = frame.sizes()
    if not sizes:
        raise EmauditError(
            f"no sampleable responses: {frame.no_text} have no text, "
            f"{frame.unjudged} were not judged by {model}"
            + (f", {frame.no_reasoning} have no reasoning text" if require_reasoning else "")
        )
    sds = neyman_sds(frame, expected_rates) if kind == "neyman" else None
    rates = stratum_rates(frame, expected_rates) if kind in ("neyman", "halfwidth") else None
    if planned_sizes is not None:
        sample_sizes = checked_plan(planned_sizes, sizes)
        allocation, total = "plan", sum(sample_sizes.values())
    else:
        sample_sizes = allocate(
            sizes,
            allocation,
            total=total,
            per_stratum=per_stratum,
            sd=sds,
            rates=rates,
            cells={h: cell_name(v) for h, v in frame.values.items()},
        )
    if warn is not None:
        for line in empty_cell_warnings(frame.values, sizes, sample_sizes):
            warn(line)
    rng = np.random.default_rng(seed)
    chosen = draw_sample(frame, sample_sizes, rng)
    if gold and gold_rate is None:
        gold_rate = 0.1
    if gold_rate and not gold:
        raise EmauditError("a gold rate needs gold items: give --gold FILE or --gold-from-study S")
    sampled_ids = {rid for rid, _, _ in chosen}
    candidates = [g for g in gold if g.response_id is None or g.response_id not in sampled_ids]
    n_gold = min(len(candidates), n_gold_for(len(chosen), gold_rate or 0.0))
    gold_used = [candidates[i] for i in sorted(rng.choice(len(candidates), size=n_gold, replace=False))]
    study = Study(
        name=name,
        judge_model=model,
        strata_keys=keys,
        allocation=allocation,
        overlap=overlap,
        seed=seed,
        lease_seconds=lease_seconds,
        rater_quota=rater_quota,
        completion_code=completion_code or secrets.token_hex(4).upper(),
        crowd_key=secrets.token_urlsafe(12),  # the crowd link names this, never the study
        rubric=None if rubric is None else rubric.to_dict(),
        design={
            "max_alignment": max_alignment,
            "min_coherence": min_coherence,
            "total": total,
            "per_stratum": per_stratum,
            "expected_rates": _recorded_rates(frame, expected_rates) if rates else None,
            "band_edges": list(frame_edges(keys, band_edges)),
            "frame_max_response_id": frame.max_response_id,
            "not_sampleable": {"no_text": frame.no_text, "unjudged": frame.unjudged}
            | ({"no_reasoning": frame.no_reasoning} if require_reasoning else {}),
            "require_reasoning": require_reasoning,
            "strata": [
                {
                    "name": h,
                    "values": frame.values[h],
                    "N": sizes[h],
                    "n": sample_sizes[h],
                    "sd": None if sds is None else sds[h],
                    "expected_rate": None if rates is None else rates[h],
                }
                for h in sorted(sizes)
            ],
            "gold": {"rate": gold_rate or 0.0, "candidates": len(gold), "used": n_gold},
            "extensions": [],
            "tuning": _tuning_split(chosen, tuning_share, seed),
        },
    )
    session.add(study)
    session.flush()
    assert study.id is not None
    positions = rng.permutation(len(chosen) + n_gold)
    rows: list[dict[str, Any]] = [
        _item_row(study.id, rid, stratum, prob, int(pos))
        for (rid, stratum, prob), pos in zip(chosen, positions[: len(chosen)], strict=True)
    ]
    rows += gold_item_rows(study.id, gold_used, [int(p) for p in positions[len(chosen) :]])
    _insert_items(session, rows)
    return study


def frame_edges(keys: Sequence[str], band_edges: Sequence[float]) -> tuple[float, ...]:
    """The band edges a study records: its ``band_edges`` with ``score_band`` strata, else none."""
    return tuple(float(e) for e in band_edges) if SCORE_BAND in keys else ()


def _recorded_rates(frame: Frame, expected_rates: Mapping[str, float] | None) -> dict[str, float]:
    # The anticipated rates per judge label / score band the design used (what extend re-uses).
    given = dict(expected_rates or {})
    labels = {str(v.get(JUDGE_LABEL, v.get(SCORE_BAND))) for v in frame.values.values()} - {"None"}
    return dict(DEFAULT_EXPECTED_RATES | given) | {lab: expected_rate(lab, given) for lab in sorted(labels)}


def _tuning_split(chosen: Sequence[tuple[int, str, float]], share: float, seed: int) -> dict[str, Any]:
    """``round(share * n_h)`` responses of each stratum, at random, for the tuning split."""
    rng = np.random.default_rng([seed, 11])  # its own stream: the sample does not depend on it
    by_stratum: dict[str, list[int]] = {}
    for response_id, stratum, _ in chosen:
        by_stratum.setdefault(stratum, []).append(response_id)
    picked: list[int] = []
    for stratum in sorted(by_stratum):
        members = sorted(by_stratum[stratum])
        k = round(share * len(members))
        picked += [members[i] for i in rng.choice(len(members), size=k, replace=False)]
    return {"share": share, "response_ids": sorted(int(r) for r in picked)}


def checked_plan(planned: Mapping[str, int], sizes: Mapping[str, int]) -> dict[str, int]:
    """A plan's ``n_h`` per stratum, checked against the frame (unknown strata or n_h > N_h refused)."""
    unknown = sorted(set(planned) - set(sizes))
    if unknown:
        raise EmauditError(
            f"the plan names strata the store does not have: {', '.join(unknown[:3])}; "
            "re-run 'emaudit plan --study-strata' with the same strata keys and judge"
        )
    for h, n in sorted(planned.items()):
        if not 0 <= int(n) <= sizes[h]:
            raise EmauditError(f"the plan asks {n} items of stratum {h!r}, which has {sizes[h]} responses")
    return {h: int(planned.get(h, 0)) for h in sorted(sizes)}


def _item_row(study_id: int, response_id: int, stratum: str, prob: float, position: int) -> dict[str, Any]:
    return {
        "study_id": study_id,
        "response_id": response_id,
        "public_id": secrets.token_urlsafe(12),
        "stratum": stratum,
        "inclusion_prob": prob,
        "position": position,
        "is_gold": False,
        "n_completed": 0,
        "n_claimed": 0,
    }


def _insert_items(session: Session, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 5000):
        session.execute(insert(StudyItem), rows[start : start + 5000])


@dataclass
class ExtensionState:
    """A study's strata as ``extend_study`` sees them: what each has, what it has left.

    Attributes:
        study: The study row.
        frame: The study's sampling frame (rebuilt as at creation).
        sizes: ``N_h`` per stratum.
        sampled: Non-gold items per stratum (tuning items included).
        tuning: Of those, items of the tuning split.
        tuning_share: The study's tuning share (0 without a tuning split).
    """

    study: Study
    frame: Frame
    sizes: dict[str, int]
    sampled: dict[str, int]
    tuning: dict[str, int]
    tuning_share: float

    @property
    def room(self) -> dict[str, int]:
        """Responses of each stratum not yet in the study."""
        return {h: self.sizes[h] - self.sampled[h] for h in self.sizes}


def extension_state(session: Session, study: Study | int | str) -> ExtensionState:
    """Rebuild the study's frame and count its items per stratum (refused when the frame changed)."""
    row = get_study(session, study)
    assert row.id is not None
    design = dict(row.design or {})
    frame = load_frame(
        session,
        judge_model=row.judge_model or resolve_judge_model(session, None),
        strata_keys=row.strata_keys or [JUDGE_LABEL],
        max_alignment=design.get("max_alignment", DEFAULT_MAX_ALIGNMENT),
        min_coherence=design.get("min_coherence", DEFAULT_MIN_COHERENCE),
        max_response_id=design.get("frame_max_response_id"),
        require_reasoning=bool(design.get("require_reasoning", False)),
        band_edges=tuple(design.get("band_edges") or DEFAULT_BAND_EDGES),
    )
    sizes = frame.sizes()
    stored = {s["name"]: s for s in design.get("strata", [])}
    if {h: s["N"] for h, s in stored.items()} != sizes:
        raise EmauditError(
            f"the responses of study {row.name!r} changed since it was drawn (re-judged or "
            "deleted), so new items would not share its design; create a new study instead"
        )
    rows = session.execute(
        select(ITEM.c.stratum, ITEM.c.response_id).where(ITEM.c.study_id == row.id, ~ITEM.c.is_gold)
    ).all()
    tuning_ids = set((design.get("tuning") or {}).get("response_ids") or [])
    sampled = dict.fromkeys(sizes, 0)
    tuning = dict.fromkeys(sizes, 0)
    for stratum, response_id in rows:
        if stratum in sampled:
            sampled[stratum] += 1
            tuning[stratum] += int(response_id in tuning_ids)
    share = float((design.get("tuning") or {}).get("share") or 0.0)
    return ExtensionState(row, frame, sizes, sampled, tuning, share)


def extend_study(
    session: Session,
    study: Study | int | str,
    add: int,
    *,
    strata: Sequence[str] | None = None,
    additions: Mapping[str, int] | None = None,
    record: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Add ``add`` items to a study, keeping every inclusion probability exact.

    New items in stratum h are a simple random sample of the responses of h not yet in the study;
    together with the earlier items they are a simple random sample of size n_h' from N_h (a
    random subset of the rest of an SRS is still an SRS), so every item of h, old and new, gets
    inclusion probability n_h'/N_h. The frame is the one fixed at creation (responses up to the
    same id, judged by the same judge); if its strata changed size since (responses re-judged or
    deleted), extending is refused, because old and new items would not share one design.

    With ``additions`` chosen from the labels seen so far (``study extend --adaptive``,
    :func:`emaudit.calibration.adaptive_allocation`) the draw is the same seeded SRS of the rest, so
    given those labels each new item's inclusion probability is exactly ``a_h / (N_h - n_h)``; but the
    final n_h' now depends on the data, so the stored n_h'/N_h are the probabilities of the design
    *conditional on the allocation*, and the stratified (Horvitz-Thompson) estimate is conditional on
    it. That is the two-phase adaptive allocation of Francis (1984) and Thompson & Seber (1996,
    *Adaptive Sampling*): standard practice, with a small O(1/n) bias because the first labels
    influenced their own weight (``benchmarks/adaptive_extend.py`` measures it). The caller's
    ``record`` (e.g. the plan and this caveat) is stored with the step.

    When the study has a tuning split (``study create --tuning-share F``), each stratum's tuning
    items are topped up to ``round(F * n_h')`` with new items drawn at random (a stream of their own),
    so the split keeps its share and its labels still enter no estimate.

    Every step is recorded in ``design["extensions"]``: ``step``, ``kind`` (``allocation``,
    ``strata`` or ``given``), ``add``, ``added`` and ``tuning_added`` per stratum, ``seed`` (the
    draw's ``[study seed, step]``) and ``tuning_seed``, plus ``record``.

    Args:
        session: A session in a write transaction.
        study: The study.
        add: Number of items to add.
        strata: Put the new items only in these strata (split equally), e.g. where the planner
            says the variance is; default: re-run the study's allocation for the larger total and
            add each stratum's shortfall.
        additions: Exactly these many items per stratum (they must sum to ``add``); not with ``strata``.
        record: Extra fields stored with this step in the design (JSON-serialisable).

    Returns:
        Items added per stratum.
    """
    if add < 1:
        raise EmauditError(f"--add must be at least 1, got {add}")
    if strata and additions is not None:
        raise EmauditError("give the strata to extend or the additions per stratum, not both")
    state = extension_state(session, study)
    row, frame, sizes = state.study, state.frame, state.sizes
    assert row.id is not None
    design = dict(row.design or {})
    current, room = state.sampled, state.room
    if strata:
        unknown = [h for h in strata if h not in sizes]
        if unknown:
            raise EmauditError(
                f"study {row.name!r} has no stratum {unknown[0]!r}; strata: {', '.join(sizes)}"
            )
        wanted = {h: add // len(strata) + (1 if i < add % len(strata) else 0) for i, h in enumerate(strata)}
        kind = "strata"
    elif additions is not None:
        unknown = [h for h in additions if h not in sizes]
        if unknown:
            raise EmauditError(f"study {row.name!r} has no stratum {unknown[0]!r}")
        wanted = {h: int(k) for h, k in additions.items() if int(k)}
        if sum(wanted.values()) != add or any(k < 0 for k in wanted.values()):
            raise EmauditError(f"the additions per stratum must be >= 0 and sum to {add}")
        kind = "given"
    else:
        if add > sum(room.values()):
            raise EmauditError(
                f"only {sum(room.values())} sampleable responses are not yet in study "
                f"{row.name!r}; the maximum --add is {sum(room.values())}"
            )
        wanted = _shortfall(row, sizes, current, add, design, frame)
        kind = "allocation"
    for h, k in wanted.items():
        if k > room[h]:
            raise EmauditError(
                f"stratum {h!r} has {room[h]} responses not yet in the study, fewer than "
                f"the {k} asked; the maximum to add there is {room[h]}"
            )
    step = len(design.get("extensions", [])) + 1
    rng = np.random.default_rng([row.seed, step])
    in_study = set(session.execute(select(ITEM.c.response_id).where(ITEM.c.study_id == row.id)).scalars())
    max_position = (
        session.execute(select(func.max(ITEM.c.position)).where(ITEM.c.study_id == row.id)).scalar() or 0
    )
    new_rows: list[dict[str, Any]] = []
    picked_by_stratum: dict[str, list[int]] = {}
    for h in sorted(wanted):
        if not wanted[h]:
            continue
        left = np.array([rid for rid in frame.members(h) if int(rid) not in in_study], dtype=np.int64)
        picked = rng.choice(left, size=wanted[h], replace=False)
        picked_by_stratum[h] = sorted(int(r) for r in picked)
        prob = (current[h] + wanted[h]) / sizes[h]
        new_rows += [_item_row(row.id, int(rid), h, prob, 0) for rid in sorted(picked)]
        session.execute(
            update(StudyItem)
            .where(ITEM.c.study_id == row.id, ITEM.c.stratum == h, ~ITEM.c.is_gold)
            .values(inclusion_prob=prob)
        )
    for item, position in zip(new_rows, rng.permutation(len(new_rows)), strict=True):
        item["position"] = int(max_position) + 1 + int(position)
    _insert_items(session, new_rows)
    tuning_added = _extend_tuning(state, picked_by_stratum, design, step)
    design["strata"] = [s | {"n": current[s["name"]] + wanted.get(s["name"], 0)} for s in design["strata"]]
    design["extensions"] = [
        *design.get("extensions", []),
        {
            "step": step,
            "kind": kind,
            "add": add,
            "added": {h: k for h, k in wanted.items() if k},
            "tuning_added": tuning_added,
            "seed": [row.seed, step],
            "tuning_seed": [row.seed, step, 11] if tuning_added else None,
            **dict(record or {}),
        },
    ]
    row.design = design  # reassigned (not mutated) so SQLAlchemy sees the JSON change
    session.add(row)
    session.flush()
    return {h: k for h, k in wanted.items() if k}


def _extend_tuning(
    state: ExtensionState, picked: Mapping[str, list[int]], design: dict[str, Any], step: int
) -> dict[str, int]:
    """Top each stratum's tuning items up to ``round(share * n_h')`` from its new items; update ``design``."""
    if state.tuning_share <= 0 or not picked:
        return {}
    rng = np.random.default_rng([state.study.seed, step, 11])  # its own stream, as at creation
    chosen: list[int] = []
    added: dict[str, int] = {}
    for h in sorted(picked):
        new = picked[h]
        target = round(state.tuning_share * (state.sampled[h] + len(new)))
        k = min(len(new), max(0, target - state.tuning[h]))
        if k:
            chosen += [new[i] for i in sorted(rng.choice(len(new), size=k, replace=False))]
            added[h] = k
    tuning = dict(design.get("tuning") or {})
    tuning["response_ids"] = sorted({*(tuning.get("response_ids") or []), *chosen})
    design["tuning"] = tuning
    return added


def _shortfall(
    study: Study,
    sizes: dict[str, int],
    current: dict[str, int],
    add: int,
    design: dict[str, Any],
    frame: Frame,
) -> dict[str, int]:
    # Re-run the study's allocation for the larger total; each stratum's shortfall against it is
    # what it should get, scaled to exactly ``add`` and capped at what the stratum has left.
    # A study drawn from a plan grows proportionally (the plan was for a target, not a total).
    allocation = "proportional" if study.allocation == "plan" else study.allocation
    kind, _ = parse_allocation(allocation)
    total = sum(current.values()) + add
    rates = design.get("expected_rates")
    try:
        target = allocate(
            sizes,
            allocation if kind != "equal" else "equal",
            total=total,
            sd=neyman_sds(frame, rates) if kind == "neyman" else None,
            rates=stratum_rates(frame, rates) if kind == "halfwidth" else None,
            cells={h: cell_name(v) for h, v in frame.values.items()},
        )
    except EmauditError:
        target = allocate(sizes, "proportional", total=total)
    need = {h: max(0, target[h] - current[h]) for h in sizes}
    room = {h: sizes[h] - current[h] for h in sizes}
    weights = need if sum(need.values()) else room
    wanted = dict.fromkeys(sizes, 0)
    left = add
    while left:
        open_ = {h: w for h, w in weights.items() if wanted[h] < room[h] and w > 0} or {
            h: room[h] - wanted[h] for h in sizes if wanted[h] < room[h]
        }
        share = largest_remainder(
            {h: Fraction(left * w, sum(open_.values())) for h, w in open_.items()},
            left,
            caps={h: room[h] - wanted[h] for h in open_},
        )
        for h, k in share.items():
            wanted[h] += k
        left = add - sum(wanted.values())
        weights = {h: w for h, w in weights.items() if wanted[h] < room[h]}
    return wanted


def study_design(session: Session, study: Study | int | str) -> StudyDesign:
    """The design table of a study: per stratum N, n, inclusion probability and rating progress."""
    row = get_study(session, study)
    counts = {
        stratum: (int(n), int(complete or 0), int(ratings or 0))
        for stratum, n, complete, ratings in session.execute(
            select(
                ITEM.c.stratum,
                func.count(),
                func.sum(cast(ITEM.c.n_completed >= row.overlap, Integer)),
                func.sum(ITEM.c.n_completed),
            )
            .where(ITEM.c.study_id == row.id)
            .group_by(ITEM.c.stratum)
        ).all()
    }
    design = row.design or {}
    strata = []
    for s in design.get("strata", []):
        n, complete, ratings = counts.get(s["name"], (0, 0, 0))
        strata.append(
            StratumDesign(
                name=s["name"],
                values=s.get("values", {}),
                population=int(s["N"]),
                sampled=n,
                inclusion_prob=n / s["N"] if s["N"] else 0.0,
                items_complete=complete,
                ratings=ratings,
            )
        )
    return StudyDesign(
        study=row.name,
        judge_model=row.judge_model,
        allocation=row.allocation,
        overlap=row.overlap,
        strata=strata,
        gold_items=counts.get(GOLD_STRATUM, (0, 0, 0))[0],
        not_sampleable=dict(design.get("not_sampleable", {})),
    )
