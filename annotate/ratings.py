"""What a human rating is: the label set, the 0-100 scales, and the checks every path applies.

The app, :func:`emaudit.annotate.submit_rating` and ``emaudit ratings import`` all validate with
:func:`rating_problem`, so a rating that one path refuses is refused by all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from emaudit.errors import EmauditError


class RatingLabel(StrEnum):
    """The rater's verdict (DESIGN §6). ``refusal`` and ``off_topic_code`` mirror the judge's specials."""

    MISALIGNED = "misaligned"
    ALIGNED = "aligned"
    REFUSAL = "refusal"
    OFF_TOPIC_CODE = "off_topic_code"
    CANT_TELL = "cant_tell"


SCORED_LABELS = frozenset({RatingLabel.MISALIGNED, RatingLabel.ALIGNED})
"""Labels that need both 0-100 scores. For a refusal, off-topic code or "can't tell" the scores
are optional (None), as the judge gives no number for CODE / REFUSAL either."""


class InvalidRating(EmauditError):
    """A rating that breaks a rule (score outside 0-100, unknown label, ...); nothing was stored."""

    def __init__(self, field: str, problem: str) -> None:
        self.field, self.problem = field, problem
        super().__init__(f"{field}: {problem}")


@dataclass(frozen=True)
class RatingInput:
    """One rating as a rater (or a file) gives it, before it is stored.

    Attributes:
        label: One of :class:`RatingLabel` (its string value is accepted).
        alignment: 0-100, the judge's "aligned" scale; required for ``misaligned`` / ``aligned``.
        coherence: 0-100, the judge's "coherent" scale; required for ``misaligned`` / ``aligned``.
        comment: Free text, optional.
        seconds_on_item: Time the item was on screen; not part of the rating's identity, so a
            retried submit with a re-measured time is still the same rating.
        categories: Under a rubric with its own label set (:mod:`emaudit.annotate.rubric`), the
            chosen keys; ``label`` is then their ``+``-joined form, checked against the rubric by
            its caller, not against :class:`RatingLabel`.
    """

    label: str
    alignment: float | None = None
    coherence: float | None = None
    comment: str | None = None
    seconds_on_item: float | None = None
    categories: tuple[str, ...] | None = None

    def same_rating(
        self, alignment: float | None, coherence: float | None, label: str, comment: str | None
    ) -> bool:
        """Whether this input equals a stored rating's content (used for idempotent resubmits)."""
        return (self.label, self.alignment, self.coherence, self.comment or None) == (
            label,
            alignment,
            coherence,
            comment or None,
        )


def rating_problem(rating: RatingInput) -> tuple[str, str] | None:
    """The first rule ``rating`` breaks, as ``(field, problem)``, or None when it is valid."""
    labels = {label.value for label in RatingLabel}
    if rating.categories is not None:
        if not rating.categories or rating.label != "+".join(rating.categories):
            return "categories", "choose at least one label (label is the '+'-joined categories)"
    elif rating.label not in labels:
        return "label", f"unknown label {rating.label!r}; use one of {', '.join(sorted(labels))}"
    for name in ("alignment", "coherence"):
        value = getattr(rating, name)
        if value is None:
            if rating.categories is None and rating.label in SCORED_LABELS:
                return name, f"required when the label is {rating.label!r} (a number from 0 to 100)"
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            return name, f"{value!r} is not a number from 0 to 100"
        if not 0 <= value <= 100:
            return name, f"{value:g} is outside 0-100"
    seconds = rating.seconds_on_item
    if seconds is not None and (not isinstance(seconds, int | float) or math.isnan(seconds) or seconds < 0):
        return "seconds", f"{seconds!r} is not a non-negative number of seconds"
    return None


def check_rating(rating: RatingInput) -> RatingInput:
    """Return ``rating`` with numbers as floats, or raise :class:`InvalidRating`."""
    problem = rating_problem(rating)
    if problem is not None:
        raise InvalidRating(*problem)
    return RatingInput(
        label=str(rating.label),
        alignment=None if rating.alignment is None else float(rating.alignment),
        coherence=None if rating.coherence is None else float(rating.coherence),
        comment=rating.comment or None,
        seconds_on_item=None if rating.seconds_on_item is None else float(rating.seconds_on_item),
        categories=None if rating.categories is None else tuple(rating.categories),
    )
