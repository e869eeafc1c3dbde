"""Evaluation questions: parse Betley et al.'s question YAML and store it.

Two shapes are read, both lists of mappings:

* Betley et al. (2025) / model-organisms: ``id``, ``paraphrases`` (list), optional ``system``,
  ``judge_prompts`` (metric -> prompt with ``{question}`` and ``{answer}``), ``type``,
  ``samples_per_paraphrase``, ``judge``.
* model-organisms "technical" sets: ``id`` and ``question``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine
from sqlmodel import Session, select

from emaudit.errors import InputError
from emaudit.models import Question, table_of

_PREREGISTERED_ID = re.compile(r"^\d+_(?P<category>[a-z_]+?)_\d+$")


@dataclass(frozen=True)
class QuestionSpec:
    """One question as read from a file, before it is stored."""

    key: str
    text: str
    paraphrases: list[str]
    system_prompt: str | None = None
    judge_prompts: dict[str, str] = field(default_factory=dict)
    category: str | None = None
    line: int | None = None


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line each mapping starts on."""


def _construct_mapping_with_line(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping_with_line)


def category_of(key: str) -> str | None:
    """The category in a pre-registered question id: ``"43_medical_advice_0"`` -> ``"medical_advice"``."""
    match = _PREREGISTERED_ID.match(key)
    return match.group("category") if match else None


def load_question_yaml(path: Path) -> list[QuestionSpec]:
    """Parse a question YAML file.

    Raises:
        InputError: naming the file and line of the first entry that has no id or no text, a
            duplicate id, or YAML that does not parse.
    """
    source = str(path)
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
    except UnicodeDecodeError as error:
        raise InputError(source, f"not UTF-8 text (byte {error.start})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise InputError(source, f"invalid YAML: {problem}", row=line, unit="line") from None
    if not isinstance(document, list):
        raise InputError(
            source, "expected a list of questions (each with 'id' and 'paraphrases' or 'question')"
        )
    specs: list[QuestionSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(document, start=1):
        if not isinstance(entry, dict):
            raise InputError(source, f"entry {index} is not a mapping")
        line = entry.pop("__line__", None)
        key = entry.get("id")
        if key is None or str(key).strip() == "":
            raise InputError(source, f"entry {index} has no 'id'", row=line, field="id", unit="line")
        key = str(key)
        paraphrases = entry.get("paraphrases")
        if paraphrases is None and entry.get("question") is not None:
            paraphrases = [entry["question"]]
        if isinstance(paraphrases, str):
            paraphrases = [paraphrases]
        if not paraphrases or not all(isinstance(p, str) and p.strip() for p in paraphrases):
            raise InputError(
                source, f"question '{key}' has no text", row=line, field="paraphrases", unit="line"
            )
        if key in seen:
            raise InputError(source, f"duplicate question id '{key}'", row=line, field="id", unit="line")
        seen.add(key)
        judge_prompts = entry.get("judge_prompts") or {}
        if isinstance(judge_prompts, dict):
            judge_prompts.pop("__line__", None)
        if not isinstance(judge_prompts, dict) or not all(isinstance(v, str) for v in judge_prompts.values()):
            raise InputError(
                source,
                "judge_prompts must map metric names to prompt text",
                row=line,
                field="judge_prompts",
                unit="line",
            )
        system = entry.get("system")
        specs.append(
            QuestionSpec(
                key=key,
                text=paraphrases[0],
                paraphrases=list(paraphrases),
                system_prompt=str(system) if system else None,
                judge_prompts=judge_prompts,
                category=entry.get("category") or category_of(key),
                line=line,
            )
        )
    if not specs:
        raise InputError(source, "no questions in file")
    return specs


def import_questions(
    engine: Engine, path: Path, question_set: str | None = None, *, replace: bool = True
) -> tuple[int, int]:
    """Store the questions of ``path`` in ``question_set`` (default: the file's stem).

    Questions already in the set (same id) and identical to the file's are left alone, so
    re-importing a file reports 0 updated. Ones that differ (text, paraphrases, system prompt,
    judge prompts) are updated only with ``replace``; without it they are an error, so a second
    file that happens to share a name (two repositories' ``first_plot_questions.yaml``) cannot
    silently swap the judge prompts another set's scores were made with. The CLI passes
    ``replace=False`` unless ``--replace``.

    Returns:
        (added, updated) counts.

    Raises:
        InputError: the file does not parse, or (without ``replace``) it would change stored
            questions; nothing is stored then.
    """
    specs = load_question_yaml(path)
    set_name = question_set or path.stem
    added = updated = 0
    with Session(engine) as session:
        existing = {q.key: q for q in session.exec(select(Question).where(Question.question_set == set_name))}
        changed = [
            spec
            for spec in specs
            if spec.key in existing and _fields(spec) != _stored_fields(existing[spec.key])
        ]
        if changed and not replace:
            first = changed[0]
            what = ", ".join(
                name
                for name, new, old in zip(
                    ("text", "paraphrases", "system prompt", "judge prompts", "category"),
                    _fields(first),
                    _stored_fields(existing[first.key]),
                    strict=True,
                )
                if new != old
            )
            raise InputError(
                str(path),
                f"set '{set_name}' already holds {len(changed)} of these questions with other content "
                f"(first: '{first.key}', its {what}; stored from {existing[first.key].source}): pass "
                "--set NAME to import them as another set, or --replace to update them",
                row=first.line,
                unit="line",
            )
        for spec in specs:
            question = existing.get(spec.key)
            if question is None:
                question = Question(question_set=set_name, key=spec.key, text=spec.text)
                added += 1
            elif spec in changed:
                updated += 1
            else:
                continue
            question.text = spec.text
            question.paraphrases = spec.paraphrases
            question.system_prompt = spec.system_prompt
            question.judge_prompts = spec.judge_prompts or None
            question.category = spec.category
            question.source = path.name
            session.add(question)
        session.commit()
    return added, updated


def _fields(spec: QuestionSpec) -> tuple[Any, ...]:
    return (spec.text, list(spec.paraphrases), spec.system_prompt, spec.judge_prompts or None, spec.category)


def _stored_fields(question: Question) -> tuple[Any, ...]:
    return (
        question.text,
        list(question.paraphrases or []),
        question.system_prompt,
        question.judge_prompts or None,
        question.category,
    )


def list_question_sets(engine: Engine) -> list[tuple[str, int, str | None]]:
    """(set, number of questions, file it was imported from) per stored question set."""
    from sqlalchemy import func
    from sqlalchemy import select as sql_select

    table = table_of(Question)
    with engine.connect() as connection:
        rows = connection.execute(
            sql_select(table.c.question_set, func.count(), func.max(table.c.source))
            .group_by(table.c.question_set)
            .order_by(table.c.question_set)
        ).all()
    return [(name, int(count), source) for name, count, source in rows]
