"""Annotation studies: stratified samples of judged responses and a concurrency-safe rating queue.

The engine under the rater app (DESIGN §4.3-4.4): which responses humans see (:func:`create_study`,
:func:`extend_study`), who rates what (:func:`claim_next`, :func:`submit_rating`,
:func:`release_expired`), how far it is (:func:`study_progress`), and ratings in and out of files.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names load on first use, so the CLI starts without the heavy libraries
    from emaudit.annotate.allocation import (
        DEFAULT_BAND_RATES,
        DEFAULT_EXPECTED_RATES,
        allocate,
        expected_rate,
    )
    from emaudit.annotate.gold import GoldSpec, gold_from_adjudications, read_gold_file
    from emaudit.annotate.queue import (
        Item,
        ItemFull,
        RaterProgress,
        StudyProgress,
        UnknownItem,
        claim_next,
        has_work,
        release_expired,
        skip_item,
        study_progress,
        submit_rating,
    )
    from emaudit.annotate.raters import (
        CrowdSession,
        NewRater,
        add_rater,
        crowd_link,
        crowd_session,
        hash_token,
        list_raters,
        rater_for_token,
        rater_link,
    )
    from emaudit.annotate.ratings import InvalidRating, RatingInput, RatingLabel
    from emaudit.annotate.ratings_io import export_ratings, import_ratings, ratings_frame
    from emaudit.annotate.rubric import DEFAULT_RUBRIC, LabelOption, Rubric, load_rubric, study_rubric
    from emaudit.annotate.sampling import (
        ExtensionState,
        Frame,
        StudyDesign,
        create_study,
        extend_study,
        extension_state,
        get_study,
        load_frame,
        study_design,
    )

_PUBLIC: dict[str, str] = {
    "DEFAULT_RUBRIC": "emaudit.annotate.rubric",
    "LabelOption": "emaudit.annotate.rubric",
    "Rubric": "emaudit.annotate.rubric",
    "load_rubric": "emaudit.annotate.rubric",
    "study_rubric": "emaudit.annotate.rubric",
    "DEFAULT_BAND_RATES": "emaudit.annotate.allocation",
    "DEFAULT_EXPECTED_RATES": "emaudit.annotate.allocation",
    "allocate": "emaudit.annotate.allocation",
    "expected_rate": "emaudit.annotate.allocation",
    "GoldSpec": "emaudit.annotate.gold",
    "gold_from_adjudications": "emaudit.annotate.gold",
    "read_gold_file": "emaudit.annotate.gold",
    "Item": "emaudit.annotate.queue",
    "ItemFull": "emaudit.annotate.queue",
    "RaterProgress": "emaudit.annotate.queue",
    "StudyProgress": "emaudit.annotate.queue",
    "UnknownItem": "emaudit.annotate.queue",
    "claim_next": "emaudit.annotate.queue",
    "has_work": "emaudit.annotate.queue",
    "release_expired": "emaudit.annotate.queue",
    "skip_item": "emaudit.annotate.queue",
    "study_progress": "emaudit.annotate.queue",
    "submit_rating": "emaudit.annotate.queue",
    "CrowdSession": "emaudit.annotate.raters",
    "NewRater": "emaudit.annotate.raters",
    "add_rater": "emaudit.annotate.raters",
    "crowd_link": "emaudit.annotate.raters",
    "crowd_session": "emaudit.annotate.raters",
    "hash_token": "emaudit.annotate.raters",
    "list_raters": "emaudit.annotate.raters",
    "rater_for_token": "emaudit.annotate.raters",
    "rater_link": "emaudit.annotate.raters",
    "InvalidRating": "emaudit.annotate.ratings",
    "RatingInput": "emaudit.annotate.ratings",
    "RatingLabel": "emaudit.annotate.ratings",
    "export_ratings": "emaudit.annotate.ratings_io",
    "import_ratings": "emaudit.annotate.ratings_io",
    "ratings_frame": "emaudit.annotate.ratings_io",
    "Frame": "emaudit.frames",
    "StudyDesign": "emaudit.annotate.sampling",
    "create_study": "emaudit.annotate.sampling",
    "extend_study": "emaudit.annotate.sampling",
    "ExtensionState": "emaudit.annotate.sampling",
    "extension_state": "emaudit.annotate.sampling",
    "get_study": "emaudit.annotate.sampling",
    "load_frame": "emaudit.frames",
    "study_design": "emaudit.annotate.sampling",
}


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'emaudit.annotate' has no attribute {name!r}")


__all__ = [
    "DEFAULT_BAND_RATES",
    "DEFAULT_EXPECTED_RATES",
    "DEFAULT_RUBRIC",
    "CrowdSession",
    "ExtensionState",
    "Frame",
    "GoldSpec",
    "InvalidRating",
    "Item",
    "ItemFull",
    "LabelOption",
    "NewRater",
    "RaterProgress",
    "RatingInput",
    "RatingLabel",
    "Rubric",
    "StudyDesign",
    "StudyProgress",
    "UnknownItem",
    "add_rater",
    "allocate",
    "claim_next",
    "create_study",
    "crowd_link",
    "crowd_session",
    "expected_rate",
    "export_ratings",
    "extend_study",
    "extension_state",
    "get_study",
    "gold_from_adjudications",
    "has_work",
    "hash_token",
    "import_ratings",
    "list_raters",
    "load_frame",
    "load_rubric",
    "rater_for_token",
    "rater_link",
    "ratings_frame",
    "read_gold_file",
    "release_expired",
    "skip_item",
    "study_design",
    "study_progress",
    "study_rubric",
    "submit_rating",
]
