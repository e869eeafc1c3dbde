"""The store's tables (DESIGN §3), as SQLModel classes.

Schema changes go through alembic migrations in ``emaudit/migrations``; a test checks that the
migrations and these classes agree.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Table, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def table_of(model: type[SQLModel]) -> Table:
    """The Core ``Table`` of a table model, typed (SQLModel does not declare ``__table__``)."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


def utcnow() -> datetime:
    """Timezone-aware now, the one clock every row uses."""
    return datetime.now(UTC)


def _json_column(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=nullable))


def _text_column(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(Text, nullable=nullable))


def _created_at() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class Question(SQLModel, table=True):
    """One evaluation question (Betley et al. 2025 YAML entry, or one seen in an import)."""

    __table_args__ = (UniqueConstraint("question_set", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    question_set: str = Field(index=True)
    key: str
    text: str = Field(sa_column=Column(Text, nullable=False))
    paraphrases: list[str] | None = _json_column()
    category: str | None = None
    system_prompt: str | None = _text_column()
    judge_prompts: dict[str, str] | None = _json_column()
    source: str | None = None


CELL_FIELDS: tuple[str, ...] = (
    "model",
    "endpoint",
    "domain",
    "n_shots",
    "seed",
    "instruction",
    "reasoning",
    "prompt_format",
)
"""Condition columns that define a cell, in display order; ``extra`` holds any further keys."""


class Condition(SQLModel, table=True):
    """One cell of an experiment: who was asked, with which in-context examples and instructions."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, description="Canonical JSON of the cell fields; identifies the cell.")
    model: str = Field(index=True)
    endpoint: str | None = None
    domain: str | None = None
    n_shots: int = 0
    seed: int | None = None
    instruction: str = "none"
    reasoning: bool = False
    prompt_format: str | None = None
    extra: dict[str, Any] | None = _json_column()
    config: dict[str, Any] | None = _json_column()

    def cell(self) -> dict[str, Any]:
        """The cell's defining fields, extras included, without defaults that say nothing."""
        return cell_dict({name: getattr(self, name) for name in CELL_FIELDS} | {"extra": self.extra or {}})


def cell_dict(fields: dict[str, Any]) -> dict[str, Any]:
    """Flatten cell fields (extras merged in) and drop empty ones, in a stable order."""
    flat: dict[str, Any] = {}
    for name in CELL_FIELDS:
        value = fields.get(name)
        if (
            value is None
            or (name == "instruction" and value == "none")
            or (name == "reasoning" and not value)
        ):
            continue
        if name == "n_shots" and value == 0:
            continue
        flat[name] = value
    for name, value in sorted((fields.get("extra") or {}).items()):
        flat[name] = value
    return flat


def condition_key(fields: dict[str, Any]) -> str:
    """The canonical, order-independent key of a cell (used for the unique ``Condition.key``)."""
    return json.dumps(cell_dict(fields), sort_keys=True, separators=(",", ":"), default=str)


class Response(SQLModel, table=True):
    """One model answer; unique per (condition, question, sample index) so re-runs never duplicate."""

    __table_args__ = (UniqueConstraint("condition_id", "question_id", "sample_index"),)

    id: int | None = Field(default=None, primary_key=True)
    condition_id: int = Field(foreign_key="condition.id")  # indexed by the unique constraint's prefix
    question_id: int = Field(foreign_key="question.id", index=True)
    sample_index: int
    messages: list[dict[str, Any]] | None = _json_column()
    text: str | None = _text_column()
    reasoning: str | None = _text_column()
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    attempts: int = 0
    error: str | None = _text_column()
    source: str | None = None
    created_at: datetime = _created_at()


class JudgeScore(SQLModel, table=True):
    """One judge verdict on one response for one metric.

    ``score`` is None when the judge put < 0.25 probability mass on numbers; ``special`` then says
    what it answered instead (``CODE``, ``REFUSAL``, ``UNPARSEABLE``), and the row stays in every
    denominator.

    Provenance (null on rows stored before it was recorded): ``requested_model`` as sent and
    ``reported_model`` as the response named it; ``prompt_hash`` of the template and
    ``request_hash`` of the exact messages sent (online and Batch API alike); ``mode``
    (``logprobs`` or ``sampled``; null for imported scores), ``samples`` (k in sampled mode), the
    request ``params`` and, in sampled mode, each sample's parsed ``sample_scores``.
    """

    __table_args__ = (UniqueConstraint("response_id", "judge_model", "metric", "prompt_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    response_id: int = Field(foreign_key="response.id")  # indexed by the unique constraint's prefix
    judge_model: str
    metric: str
    score: float | None = None
    special: str | None = None
    number_mass: float | None = None
    top_logprobs: dict[str, float] | None = _json_column()
    raw: str | None = _text_column()
    prompt_hash: str = ""
    error: str | None = _text_column()
    created_at: datetime = _created_at()
    requested_model: str | None = None
    reported_model: str | None = None
    request_hash: str | None = None
    mode: str | None = None
    samples: int | None = None
    params: dict[str, Any] | None = _json_column()
    sample_scores: list[float | None] | None = _json_column()


class Study(SQLModel, table=True):
    """An annotation sample drawn from judged responses, with its design."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    judge_model: str | None = None
    strata_keys: list[str] | None = _json_column()
    allocation: str = "equal"
    overlap: int = 1
    seed: int = 0
    lease_seconds: int = 900
    rater_quota: int | None = Field(
        default=None, description="Default quota for raters created by crowd links."
    )
    design: dict[str, Any] | None = _json_column()
    completion_code: str | None = None
    crowd_key: str | None = Field(
        default=None,
        unique=True,
        description="Opaque key of the crowd link (the name may reveal conditions).",
    )
    rubric: dict[str, Any] | None = Field(
        default=None,
        sa_column=Column(JSON, nullable=True),
        description="The study's rubric (emaudit.annotate.rubric); null is the default EM rubric.",
    )
    created_at: datetime = _created_at()


class StudyItem(SQLModel, table=True):
    """A response in a study. ``public_id`` is the only id a rater ever sees.

    ``n_completed`` / ``n_claimed`` are denormalised counts of submitted ratings and live leases,
    kept by the queue in the same transaction as the assignment rows, so that claiming is one
    indexed query even on a 20,000-item study. Gold items written from a file without a stored
    response carry their text in ``gold_question`` / ``gold_answer`` (``response_id`` is then null).
    """

    __table_args__ = (
        UniqueConstraint("study_id", "response_id"),
        Index("ix_studyitem_study_position", "study_id", "position"),
        Index("ix_studyitem_queue", "study_id", "n_completed", "position"),
        Index("ix_studyitem_requeue", "study_id", "queue_rank", "n_completed", "position"),
    )

    id: int | None = Field(default=None, primary_key=True)
    study_id: int = Field(foreign_key="study.id", index=True)
    response_id: int | None = Field(default=None, foreign_key="response.id", index=True)
    public_id: str = Field(unique=True)
    stratum: str
    inclusion_prob: float
    position: int
    is_gold: bool = False
    expected_label: str | None = None
    expected_alignment: float | None = None
    expected_coherence: float | None = None
    gold_question: str | None = _text_column()
    gold_answer: str | None = _text_column()
    n_completed: int = 0
    n_claimed: int = 0
    queue_rank: int = Field(
        default=1, description="0 after a lease expired or a rater skipped: served before other items."
    )


RATER_ROLES = ("rater", "admin")
"""Raters rate; admins also see the study's admin pages (judge scores included)."""


class Rater(SQLModel, table=True):
    """A person who rates; the token in their link is stored only as a hash.

    ``extra`` keeps crowd-platform context (Prolific ``STUDY_ID`` / ``SESSION_ID``).
    """

    __table_args__ = (UniqueConstraint("study_id", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    display_name: str
    external_id: str | None = Field(default=None, index=True)
    role: str = "rater"
    token_hash: str = Field(unique=True)
    study_id: int | None = Field(default=None, foreign_key="study.id")
    quota: int | None = None
    active: bool = Field(default=True, description="False: deactivated by an admin; the link stops working.")
    extra: dict[str, Any] | None = _json_column()
    created_at: datetime = _created_at()


class Assignment(SQLModel, table=True):
    """A rater's claim on an item: a lease until submitted."""

    __table_args__ = (
        UniqueConstraint("item_id", "rater_id"),
        Index("ix_assignment_study_status_lease", "study_id", "status", "lease_expires_at"),
        Index("ix_assignment_rater_study_status", "rater_id", "study_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    study_id: int = Field(foreign_key="study.id")
    item_id: int = Field(foreign_key="studyitem.id", index=True)
    rater_id: int = Field(foreign_key="rater.id", index=True)
    status: str = Field(default="claimed", description="claimed | submitted | expired | skipped")
    claimed_at: datetime = _created_at()
    lease_expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    submitted_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class Rating(SQLModel, table=True):
    """A human rating. Append-only: an edit is a new row whose ``supersedes_id`` names the old one."""

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="studyitem.id", index=True)
    rater_id: int = Field(foreign_key="rater.id", index=True)
    alignment: float | None = None
    coherence: float | None = None
    label: str
    categories: list[str] | None = Field(
        default=None,
        sa_column=Column(JSON, nullable=True),
        description="Labels chosen under a rubric's own label set (several when multi-select).",
    )
    comment: str | None = _text_column()
    seconds_on_item: float | None = None
    supersedes_id: int | None = Field(default=None, foreign_key="rating.id")
    created_at: datetime = _created_at()


class Adjudication(SQLModel, table=True):
    """An admin's final label for an item where raters disagreed; overrides the majority."""

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="studyitem.id", index=True)
    rater_id: int | None = Field(default=None, foreign_key="rater.id")
    label: str
    alignment: float | None = None
    coherence: float | None = None
    note: str | None = _text_column()
    created_at: datetime = _created_at()
