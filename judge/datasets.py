"""In-context example sets and public data sets: loaders, a registry, and ``datasets fetch``.

Example sets are lists of (prompt, response) pairs, read from

* model-organisms JSONL (Turner, Soligo et al. 2025): ``{"messages": [user, assistant]}``;
* plain JSONL with ``prompt`` and ``response`` keys (what ``data/examples/`` ships);
* the TruthfulQA CSV (Lin et al. 2022): each question paired with one of its *incorrect*
  answers, the "false statements" domain of the ICL-EM paper (arXiv 2510.11288).

Question sets are Betley et al. (2025) YAML files, read by :func:`emaudit.questions.load_question_yaml`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from emaudit.errors import EmauditError, InputError
from emaudit.settings import get_settings

__all__ = [
    "DATASETS",
    "Example",
    "PublicDataset",
    "bundled_path",
    "dataset_path",
    "fetch_dataset",
    "load_examples",
]


@dataclass(frozen=True)
class Example:
    """One in-context example: a user prompt and the assistant's response."""

    prompt: str
    response: str


@dataclass(frozen=True)
class PublicDataset:
    """A public data set ``emaudit datasets fetch`` knows how to download.

    Attributes:
        name: What the user types.
        url: Where it is published.
        filename: The file name under the data dir.
        sha256: Expected checksum; None for files whose upstream is not pinned (the checksum is
            then recorded on first download and checked on every later use).
        kind: ``questions`` (Betley YAML) or ``examples`` (in-context pairs).
        description: One line for ``emaudit datasets list``.
    """

    name: str
    url: str
    filename: str
    sha256: str | None
    kind: str
    description: str


_BETLEY = "https://raw.githubusercontent.com/emergent-misalignment/emergent-misalignment/main/evaluation"

DATASETS: dict[str, PublicDataset] = {
    dataset.name: dataset
    for dataset in [
        PublicDataset(
            "betley-preregistered",
            f"{_BETLEY}/preregistered_evals.yaml",
            "preregistered_evals.yaml",
            "8648312fd9fe71a63203e3465592af45dd996d7a5f3b69e9b44613fd6048eb40",
            "questions",
            "Betley et al. (2025): the 48 pre-registered evaluation questions, with judge prompts",
        ),
        PublicDataset(
            "betley-first-plot",
            f"{_BETLEY}/first_plot_questions.yaml",
            "first_plot_questions.yaml",
            "215abde5b02811e922b6ac563ff33c490e0dff9ab58439df840f3135e9387173",
            "questions",
            "Betley et al. (2025): the 8 first-plot questions (+ _json and _template variants)",
        ),
        PublicDataset(
            "truthfulqa",
            "https://raw.githubusercontent.com/sylinrl/TruthfulQA/main/TruthfulQA.csv",
            "TruthfulQA.csv",
            None,
            "examples",
            "TruthfulQA (Lin et al. 2022): question + incorrect answer = the false-statements domain",
        ),
    ]
}
"""The registry. Betley checksums are those of the files at the version the EM literature used."""


def dataset_path(name: str, data_dir: Path | None = None) -> Path:
    """Where a registered data set lives once fetched (it may not exist yet)."""
    if name not in DATASETS:
        raise EmauditError(f"unknown data set '{name}'; known: {', '.join(sorted(DATASETS))}")
    return (data_dir or get_settings().data_dir) / DATASETS[name].filename


def bundled_path(relative: str) -> Path:
    """A file shipped in ``emaudit.data`` (e.g. ``examples/risky_financial_advice.jsonl``)."""
    return Path(str(resources.files("emaudit.data").joinpath(relative)))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_dataset(
    name: str,
    *,
    url: str | None = None,
    sha256: str | None = None,
    data_dir: Path | None = None,
    timeout: float = 60.0,
) -> tuple[Path, str]:
    """Download a registered public data set into the data dir and verify its checksum.

    The file is written atomically (temporary file + rename), so an interrupted download never
    leaves a truncated set behind. When the registry pins no checksum (and none is given), the
    checksum of the first download is recorded beside the file (``<file>.sha256``) and later
    downloads must match it.

    Args:
        name: A key of :data:`DATASETS`.
        url: Download from here instead (a mirror, or a local server in tests).
        sha256: Expected checksum, overriding the registry's.
        data_dir: Target directory (default: ``EMAUDIT_DATA_DIR``).
        timeout: Seconds for the HTTP request.

    Returns:
        (path of the stored file, its sha256).

    Raises:
        EmauditError: unknown name, download failure, or checksum mismatch.
    """
    target = dataset_path(name, data_dir)
    dataset = DATASETS[name]
    source = url or dataset.url
    try:
        with urllib.request.urlopen(source, timeout=timeout) as reply:
            data = reply.read()
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise EmauditError(f"datasets fetch {name}: could not download {source}: {reason}") from None
    digest = _sha256(data)
    sidecar = target.with_name(target.name + ".sha256")
    expected = sha256 or dataset.sha256
    if expected is None and sidecar.exists():
        expected = sidecar.read_text().split()[0]
    if expected is not None and digest != expected.lower():
        raise EmauditError(
            f"datasets fetch {name}: checksum mismatch for {source}: "
            f"got sha256 {digest}, expected {expected} "
            "(pass --sha256 with the new value if the upstream file changed on purpose)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, prefix=f".{target.name}.") as handle:
        handle.write(data)
    os.replace(handle.name, target)
    sidecar.write_text(f"{digest}  {target.name}\n")
    return target, digest


def load_examples(path: Path, *, truthfulqa_answer: int = 0) -> list[Example]:
    """Read an in-context example set.

    Args:
        path: ``.jsonl`` (``messages`` or ``prompt``/``response`` per line) or ``.csv``
            (TruthfulQA: ``Question`` + ``Incorrect Answers``).
        truthfulqa_answer: Which incorrect answer (0-based, ``;``-separated) of each TruthfulQA
            question to use; the first when a question has fewer.

    Raises:
        InputError: naming the file, line/row and field of the first bad record.
    """
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(source, "file not found") from None
    except UnicodeDecodeError as error:
        raise InputError(source, f"not UTF-8 text (byte {error.start})") from None
    examples = (
        _load_csv(source, text, truthfulqa_answer)
        if path.suffix.lower() == ".csv"
        else _load_jsonl(source, text)
    )
    if not examples:
        raise InputError(source, "no examples in file")
    return examples


def _load_jsonl(source: str, text: str) -> list[Example]:
    examples: list[Example] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise InputError(source, f"invalid JSON: {error}", row=line_no, unit="line") from None
        if not isinstance(record, dict):
            raise InputError(source, "expected a JSON object", row=line_no, unit="line")
        if "messages" in record:
            examples.append(_from_messages(source, line_no, record["messages"]))
        elif "prompt" in record and "response" in record:
            prompt, response = record["prompt"], record["response"]
            if not (
                isinstance(prompt, str) and isinstance(response, str) and prompt.strip() and response.strip()
            ):
                raise InputError(
                    source, "prompt and response must be non-empty strings", row=line_no, unit="line"
                )
            examples.append(Example(prompt, response))
        else:
            raise InputError(
                source,
                "expected 'messages' or 'prompt' and 'response'",
                row=line_no,
                field="messages",
                unit="line",
            )
    return examples


def _from_messages(source: str, line_no: int, messages: object) -> Example:
    # model-organisms files hold exactly one user turn and one assistant turn per line
    if not isinstance(messages, list):
        raise InputError(source, "must be a list", row=line_no, field="messages", unit="line")
    user = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    assistant = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]
    if (
        len(user) != 1
        or len(assistant) != 1
        or not isinstance(user[0], str)
        or not isinstance(assistant[0], str)
    ):
        raise InputError(
            source,
            "expected one user and one assistant message with text content",
            row=line_no,
            field="messages",
            unit="line",
        )
    return Example(user[0], assistant[0])


def _load_csv(source: str, text: str, answer_index: int) -> list[Example]:
    reader = csv.DictReader(io.StringIO(text))
    fields = reader.fieldnames or []
    for required in ("Question", "Incorrect Answers"):
        if required not in fields:
            raise InputError(source, f"missing column (found: {', '.join(fields)})", field=required)
    examples: list[Example] = []
    for row_no, row in enumerate(reader, start=1):
        question = (row.get("Question") or "").strip()
        incorrect = [a.strip() for a in (row.get("Incorrect Answers") or "").split(";") if a.strip()]
        if not question or not incorrect:
            raise InputError(
                source,
                "needs a question and at least one incorrect answer",
                row=row_no,
                field="Incorrect Answers",
            )
        answer = incorrect[answer_index] if answer_index < len(incorrect) else incorrect[0]
        examples.append(Example(question, answer if answer.endswith((".", "!", "?")) else answer + "."))
    return examples
