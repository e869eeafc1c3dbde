"""Annotation studies: stratified samples of judged responses and a concurrency-safe rating queue.

The engine under the rater app (DESIGN §4.3-4.4): which responses humans see (:func:`create_study`,
:func:`extend_study`), who rates what (:func:`claim_next`, :func:`submit_rating`,
:func:`release_expired`), how far it is (:func:`study_progress`), and ratings in and out of files.
"""

from emaudit.annotate.allocation import DEFAULT_EXPECTED_RATES, allocate
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
from emaudit.annotate.sampling import (
    Frame,
    StudyDesign,
    create_study,
    extend_study,
    get_study,
    load_frame,
    study_design,
)

__all__ = [
    "DEFAULT_EXPECTED_RATES",
    "CrowdSession",
    "Frame",
    "GoldSpec",
    "InvalidRating",
    "Item",
    "ItemFull",
    "NewRater",
    "RaterProgress",
    "RatingInput",
    "RatingLabel",
    "StudyDesign",
    "StudyProgress",
    "UnknownItem",
    "add_rater",
    "allocate",
    "claim_next",
    "create_study",
    "crowd_link",
    "crowd_session",
    "export_ratings",
    "extend_study",
    "get_study",
    "gold_from_adjudications",
    "has_work",
    "hash_token",
    "import_ratings",
    "list_raters",
    "load_frame",
    "rater_for_token",
    "rater_link",
    "ratings_frame",
    "read_gold_file",
    "release_expired",
    "study_design",
    "study_progress",
    "submit_rating",
]
