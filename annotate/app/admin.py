"""What the admin pages of the rating app read and write, without Streamlit.

Admins may see everything raters may not (judge scores, strata, every rater's ratings); these
functions are only called from pages that passed the server-side admin check
(:func:`emaudit.annotate.app.session.require_admin`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from emaudit.annotate._tables import ADJUDICATION, ITEM, JUDGE_SCORE, QUESTION, RATER, RATING, RESPONSE, STUDY
from emaudit.annotate.app.state import Identity
from emaudit.annotate.queue import skipped_count, study_progress
from emaudit.annotate.raters import reactivate_rater, revoke_rater
from emaudit.annotate.ratings import RatingLabel
from emaudit.annotate.ratings_io import ratings_frame
from emaudit.annotate.sampling import get_study, study_design
from emaudit.errors import EmauditError
from emaudit.models import Adjudication, Rater, StudyItem, utcnow
from emaudit.store import write_session

# How each rater label votes on "misaligned" (None abstains); the calibration's rule, so the queue
# shows exactly the items whose human label the majority rule finds contested.
_VOTES: dict[str, bool | None] = {
    RatingLabel.MISALIGNED: True,
    RatingLabel.ALIGNED: False,
    RatingLabel.REFUSAL: False,
    RatingLabel.OFF_TOPIC_CODE: False,
    RatingLabel.CANT_TELL: None,
}


def admin_studies(engine: Engine, identity: Identity) -> list[str]:
    """Studies this admin may manage (the one they are tied to, else all), the one in progress first.

    In progress: some ratings, not every item complete; among those, and then among the rest, the
    study rated most recently, then the newest, comes first.
    """
    with Session(engine) as session:
        last_rating = (
            select(func.max(RATING.c.created_at))
            .join(ITEM, ITEM.c.id == RATING.c.item_id)
            .where(ITEM.c.study_id == STUDY.c.id)
            .scalar_subquery()
        )
        open_items = (
            select(func.count())
            .select_from(ITEM)
            .where(ITEM.c.study_id == STUDY.c.id, ITEM.c.n_completed < STUDY.c.overlap)
            .scalar_subquery()
        )
        query = select(STUDY.c.name, STUDY.c.id, last_rating, open_items)
        rater = session.get(Rater, identity.rater_id)
        if rater is not None and rater.study_id is not None:
            query = query.where(STUDY.c.id == rater.study_id)
        rows = session.execute(query).all()

    def rank(row: Any) -> tuple[int, float, int]:
        in_progress = row[2] is not None and row[3] > 0
        stamp = pd.Timestamp(row[2]).timestamp() if row[2] is not None else 0.0
        return (0 if in_progress else 1, -stamp, -row[1])

    return [row[0] for row in sorted(rows, key=rank)]


def design_table(engine: Engine, study: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """The study's settings and its design table (per stratum N, n, inclusion probability, progress)."""
    with Session(engine) as session:
        design = study_design(session, study)
        row = get_study(session, study)
        settings = {
            "judge": design.judge_model,
            "allocation": design.allocation,
            "overlap (raters per item)": design.overlap,
            "gold items": design.gold_items,
            "lease (minutes)": round(row.lease_seconds / 60, 1),
            "crowd quota": row.rater_quota,
            "completion code": row.completion_code,
        }
    table = pd.DataFrame(  # columns named once, so an empty study still has them
        [
            (s.name, s.population, s.sampled, s.inclusion_prob, s.items_complete, s.ratings)
            for s in design.strata
        ],
        columns=[
            "stratum",
            "N (population)",
            "n (sampled)",
            "inclusion probability",
            "items complete",
            "ratings",
        ],
    )
    return settings, table


RATE_WINDOW = timedelta(hours=1)
"""Ratings per hour are counted over this last stretch of time (the pace now, not since the start)."""


def rating_pace(
    engine: Engine, study: str, remaining: int, *, now: datetime | None = None
) -> tuple[float, timedelta | None]:
    """Ratings per hour over the last :data:`RATE_WINDOW`, and the time left at that pace.

    Args:
        engine: The store.
        study: The study's name.
        remaining: Ratings still needed.
        now: The clock (tests).

    Returns:
        ``(per_hour, eta)``; ``eta`` is None while nothing was rated in the window (no pace to
        extrapolate), and zero when nothing remains.
    """
    now = now or utcnow()
    with Session(engine) as session:
        study_id = get_study(session, study).id
        recent = session.execute(
            select(func.count())
            .select_from(RATING)
            .join(ITEM, ITEM.c.id == RATING.c.item_id)
            .where(
                ITEM.c.study_id == study_id,
                RATING.c.supersedes_id.is_(None),  # an edit is not new work
                RATING.c.created_at > now - RATE_WINDOW,
            )
        ).scalar_one()
    per_hour = recent / (RATE_WINDOW / timedelta(hours=1))
    if remaining <= 0:
        return per_hour, timedelta(0)
    if per_hour == 0:
        return per_hour, None
    return per_hour, timedelta(hours=remaining / per_hour)


def progress_tables(engine: Engine, study: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """Study-level counts (with pace and ETA) and one row per rater (submitted, skipped, live claims,
    gold accuracy, median time, active)."""
    with Session(engine) as session:
        progress = study_progress(session, study)
        skipped = skipped_count(session, study)
        rater_ids = [r.rater_id for r in progress.raters]
        flags = select(RATER.c.id, RATER.c.active).where(RATER.c.id.in_(rater_ids))
        active = dict(session.execute(flags).all())
    per_hour, eta = rating_pace(engine, study, progress.ratings_needed - progress.ratings)
    counts = {
        "ratings": progress.ratings,
        "ratings needed": progress.ratings_needed,
        "items complete": progress.items_complete,
        "items": progress.items,
        "live claims": progress.active_claims,
        "expired claims": progress.expired_claims,
        "skips": skipped,
        "ratings per hour": per_hour,
        "eta": eta,
    }
    raters = pd.DataFrame(
        [
            (
                r.name,
                r.external_id,
                r.submitted,
                r.active_claims,
                r.gold_rated,
                r.gold_accuracy,
                r.median_seconds,
                bool(active.get(r.rater_id, True)),
                r.rater_id,
            )
            for r in progress.raters
        ],
        columns=[
            "rater",
            "external id",
            "submitted",
            "live claims",
            "gold rated",
            "gold accuracy",
            "median seconds",
            "active",
            "id",
        ],
    )
    return counts, raters


def format_eta(eta: timedelta | None) -> str:
    """``eta`` as text for the overview (``-`` without a pace)."""
    if eta is None:
        return "-"
    minutes = round(eta / timedelta(minutes=1))
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest:02d} min" if hours < 48 else f"{hours / 24:.1f} days"


def set_rater_active(engine: Engine, admin: Identity, rater_id: int, *, active: bool) -> str | None:
    """Deactivate (link revoked, claims released) or reactivate a rater of one of the admin's studies.

    Returns:
        The reactivated rater's new personal link (their old one stays dead), else None.

    Raises:
        EmauditError: an unknown rater, the admin themself, or a rater of a study the admin does
            not manage.
    """
    if rater_id == admin.rater_id:
        raise EmauditError("you cannot deactivate yourself")
    with write_session(engine) as session:
        rater = session.get(Rater, rater_id)
        if rater is None:
            raise EmauditError(f"unknown rater {rater_id}")
        me = session.get(Rater, admin.rater_id)
        if me is not None and me.study_id is not None and rater.study_id != me.study_id:
            raise EmauditError("this rater belongs to a study you do not manage")
        if active:
            return reactivate_rater(session, rater).link()
        revoke_rater(session, rater)
        return None


def label_outcomes(engine: Engine, study: str) -> dict[str, int]:
    """Items by how their human label came about: ``tie`` (decisive votes split evenly) and
    ``cant_tell`` (only "can't tell" votes) are counted apart, as are adjudicated, unanimous,
    majority and single-rating items (:func:`emaudit.calibration.consensus.human_labels`)."""
    from emaudit.calibration.consensus import human_labels
    from emaudit.calibration.study_frames import load_study_frames

    frames = load_study_frames(engine, study)
    ratings = frames.ratings
    if frames.categories:  # a rubric with its own labels: only EM labels have an EM outcome
        from emaudit.calibration.consensus import RATER_LABEL_VOTES

        ratings = ratings[ratings["label"].isin(list(RATER_LABEL_VOTES))]
    if ratings.empty and not frames.adjudicated:
        return {}
    sources = human_labels(ratings, frames.adjudicated).table["source"].value_counts()
    return {("cant_tell" if name == "no_vote" else str(name)): int(n) for name, n in sources.items()}


def calibration_document(engine: Engine, study: str, *, n_boot: int = 0) -> dict[str, Any]:
    """The calibration document of ``study`` (``emaudit calibrate``'s numbers) from the live ratings.

    ``n_boot`` is 0 (point estimates, fast enough to refresh while raters work) or at least 2000
    (bootstrap intervals for Krippendorff's alpha; the statistic refuses fewer).
    """
    from emaudit.calibration.report_store import build_document
    from emaudit.calibration.study_frames import load_study_frames

    return build_document(load_study_frames(engine, study), n_boot=n_boot)


def _number(entry: Any) -> str:
    if not isinstance(entry, dict):
        return "-"
    if "error" in entry:
        return f"not defined: {entry['error']}"
    value = entry.get("value", entry.get("rate"))
    if value is None:
        return "-"
    text = f"{value:.3f}"
    if entry.get("low") is not None and entry.get("high") is not None:
        text += f" [{entry['low']:.3f}, {entry['high']:.3f}]"
    return text


def agreement_rows(document: dict[str, Any]) -> pd.DataFrame:
    """The agreement statistics of a calibration document as a two-column table."""
    agreement = document["agreement"]
    hh, jh = agreement["human_human"], agreement["judge_human"]
    rows = [
        ("humans: Krippendorff's alpha (label)", _number(hh.get("alpha_nominal"))),
        ("humans: Krippendorff's alpha (alignment score)", _number(hh.get("alpha_interval_alignment"))),
        ("humans: Fleiss' kappa", _number(hh.get("fleiss_kappa"))),
        ("humans: mean pairwise Cohen's kappa", _number(hh.get("cohen_kappa_mean_pairwise"))),
        ("humans: percent agreement", _number(hh.get("percent_agreement"))),
        ("judge vs humans: Krippendorff's alpha (label)", _number(jh.get("alpha_nominal"))),
        ("judge vs humans: alpha (alignment score)", _number(jh.get("alpha_interval_alignment"))),
        ("judge vs majority: Cohen's kappa", _number(jh.get("cohen_kappa_vs_majority"))),
    ]
    categories = document.get("categories", {}).get("agreement", {})
    rows += [(f"humans: alpha ({key})", _number(v)) for key, v in categories.get("per_category", {}).items()]
    if "masi" in categories:
        rows.append(("humans: alpha (MASI, label sets)", _number(categories["masi"])))
    return pd.DataFrame(rows, columns=["statistic", "value"])


def rates_rows(document: dict[str, Any]) -> pd.DataFrame:
    """Judge rate and corrected EM rate per cell (and overall) from a calibration document."""
    rows = []
    for entry in [*document["cells"], document["overall"]]:
        errors = entry.get("judge_errors") or {}
        rows.append(
            {
                "cell": "overall" if entry["cell"] is None else entry["cell"],
                "judged": entry["n_judged"],
                "judge EM rate": entry["judge_rate"],
                "corrected EM rate": _number(entry.get("corrected")),
                "judge sensitivity": _number(errors.get("sensitivity")),
                "judge specificity": _number(errors.get("specificity")),
                "problems": "; ".join(entry.get("errors") or []),
            }
        )
    return pd.DataFrame(rows)


@dataclass
class ItemRating:
    """One current rating of a disputed item, as the admin sees it."""

    rater: str
    label: str
    alignment: float | None
    coherence: float | None
    comment: str | None
    seconds: float | None


@dataclass
class DisputedItem:
    """An item whose raters disagree, with everything the admin needs to decide it."""

    item_id: int
    public_id: str
    stratum: str
    is_gold: bool
    question: str
    answer: str
    ratings: list[ItemRating]
    judge_scores: dict[str, float | None] = field(default_factory=dict)
    adjudicated: str | None = None


def _disagree(labels: list[str], *, any_label: bool) -> bool:
    if len(labels) < 2:
        return False
    if any_label:
        return len(set(labels)) > 1
    votes = {_VOTES.get(label) for label in labels} - {None}
    return votes == {True, False}


def disputed_items(
    engine: Engine, study: str, *, any_label: bool = False, include_adjudicated: bool = False
) -> list[DisputedItem]:
    """Items whose current ratings disagree, in display order.

    Args:
        engine: The store.
        study: The study's name.
        any_label: Count any two different labels (e.g. refusal vs aligned) as a disagreement;
            by default only a split on misaligned vs not misaligned counts, which is what moves the
            human label and the corrected rate.
        include_adjudicated: Also list items that already have an adjudication.
    """
    with Session(engine) as session:
        row = get_study(session, study)
        superseded = select(RATING.c.supersedes_id).where(RATING.c.supersedes_id.is_not(None))
        rating_rows = session.execute(
            select(
                RATING.c.item_id,
                RATER.c.display_name,
                RATING.c.label,
                RATING.c.alignment,
                RATING.c.coherence,
                RATING.c.comment,
                RATING.c.seconds_on_item,
            )
            .join(ITEM, ITEM.c.id == RATING.c.item_id)
            .join(RATER, RATER.c.id == RATING.c.rater_id)
            .where(ITEM.c.study_id == row.id, RATING.c.id.not_in(superseded))
            .order_by(RATING.c.id)
        ).all()
        by_item: dict[int, list[ItemRating]] = defaultdict(list)
        for item_id, *values in rating_rows:
            by_item[item_id].append(ItemRating(*values))
        adjudicated = _latest_adjudications(session, row.id or 0)
        wanted = [
            item_id
            for item_id, ratings in by_item.items()
            if _disagree([r.label for r in ratings], any_label=any_label)
            and (include_adjudicated or item_id not in adjudicated)
        ]
        if not wanted:
            return []
        text_rows = session.execute(
            select(
                ITEM.c.id,
                ITEM.c.public_id,
                ITEM.c.stratum,
                ITEM.c.is_gold,
                ITEM.c.response_id,
                func.coalesce(QUESTION.c.text, ITEM.c.gold_question, ""),
                func.coalesce(RESPONSE.c.text, ITEM.c.gold_answer, ""),
            )
            .select_from(
                ITEM.outerjoin(RESPONSE, RESPONSE.c.id == ITEM.c.response_id).outerjoin(
                    QUESTION, QUESTION.c.id == RESPONSE.c.question_id
                )
            )
            .where(ITEM.c.id.in_(wanted))
            .order_by(ITEM.c.position)
        ).all()
        scores: dict[int, dict[str, float | None]] = defaultdict(dict)
        response_ids = [r.response_id for r in text_rows if r.response_id is not None]
        if response_ids and row.judge_model:
            for response_id, metric, score in session.execute(
                select(JUDGE_SCORE.c.response_id, JUDGE_SCORE.c.metric, JUDGE_SCORE.c.score)
                .where(
                    JUDGE_SCORE.c.response_id.in_(response_ids), JUDGE_SCORE.c.judge_model == row.judge_model
                )
                .order_by(JUDGE_SCORE.c.id)
            ):
                scores[response_id][metric] = score
    return [
        DisputedItem(
            item_id=r.id,
            public_id=r.public_id,
            stratum=r.stratum,
            is_gold=bool(r.is_gold),
            question=r[5],
            answer=r[6],
            ratings=by_item[r.id],
            judge_scores=dict(scores.get(r.response_id, {})) if r.response_id is not None else {},
            adjudicated=adjudicated.get(r.id),
        )
        for r in text_rows
    ]


def _latest_adjudications(session: Session, study_id: int) -> dict[int, str]:
    rows = session.execute(
        select(ADJUDICATION.c.item_id, ADJUDICATION.c.label)
        .join(ITEM, ITEM.c.id == ADJUDICATION.c.item_id)
        .where(ITEM.c.study_id == study_id)
        .order_by(ADJUDICATION.c.id)
    ).all()
    return {item_id: label for item_id, label in rows}  # the newest adjudication wins


def adjudicate(
    engine: Engine,
    identity: Identity,
    item_id: int,
    label: str,
    *,
    note: str | None = None,
    alignment: float | None = None,
    coherence: float | None = None,
) -> None:
    """Record the admin's final label for an item (a new :class:`Adjudication` row; newest wins).

    Raises:
        EmauditError: an unknown label, a score outside 0-100, or an unknown item.
    """
    if label not in {member.value for member in RatingLabel}:
        raise EmauditError(f"unknown label {label!r}")
    for name, value in (("alignment", alignment), ("coherence", coherence)):
        if value is not None and not 0 <= value <= 100:
            raise EmauditError(f"{name} {value:g} is outside 0-100")
    with write_session(engine) as session:
        if session.get(StudyItem, item_id) is None:
            raise EmauditError(f"unknown item {item_id}")
        session.add(
            Adjudication(
                item_id=item_id,
                rater_id=identity.rater_id,
                label=label,
                alignment=alignment,
                coherence=coherence,
                note=(note or "").strip() or None,
            )
        )


def ratings_csv(engine: Engine, study: str, *, all_versions: bool = False) -> tuple[bytes, int]:
    """The study's ratings as CSV bytes (``emaudit ratings export``'s columns) and the row count."""
    with Session(engine) as session:
        frame = ratings_frame(session, study, all_versions=all_versions)
    return frame.to_csv(index=False).encode("utf-8"), len(frame)
