"""Import answers that were generated and judged elsewhere.

Formats (``--format``; ``auto`` looks at the file):

* ``betley`` — CSV with ``question, answer, question_id, aligned, coherent`` (Betley et al. 2025
  ``eval.py`` output). A ``model`` column sets the model per row, ``group`` becomes a cell key,
  ``judge_<metric>`` columns (the judge's raw probabilities) are kept verbatim with that metric.
* ``organisms`` — CSV with ``response, question, question_id, aligned, coherent`` (Turner, Soligo
  et al. 2025); every further numeric column (``financial``, ``bad_stuff``, ...) is kept as one more
  judge metric.
* ``jsonl`` — one object per line; the fields are documented in ``docs/formats.md``.

In both CSV formats, columns named after a cell field (``domain``, ``n_shots``, ``seed``,
``instruction``, ``reasoning``, ``prompt_format``, ``endpoint``) set that field per row.

An empty or ``None`` score is a *null* score (the judge put < 0.25 of its probability on numbers,
answering CODE or REFUSAL): it is stored and counted, never dropped. A file is imported in one
transaction: any bad row stores nothing from that file, and re-importing a file stores nothing new.

Layout: one reader per format (``_csv``, ``_jsonl``) turns a file into validated chunks of the
shape in ``_validation`` (which also holds the checks they share), ``_writer`` stores chunks, and
``_importer`` runs one file in one transaction; ``_folder`` reads cells from file names.
"""

from __future__ import annotations

from emaudit.importing._csv import detect_format
from emaudit.importing._folder import files_in_folder, pattern_regex
from emaudit.importing._importer import import_responses
from emaudit.importing._validation import (
    IMPORTED_PROMPT_HASH,
    IMPORTED_QUESTION_SET,
    ImportSummary,
    parse_condition_options,
)

__all__ = [
    "IMPORTED_PROMPT_HASH",
    "IMPORTED_QUESTION_SET",
    "ImportSummary",
    "detect_format",
    "files_in_folder",
    "import_responses",
    "parse_condition_options",
    "pattern_regex",
]
