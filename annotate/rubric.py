"""A study's rubric: what the rater sees, which scales, which labels, and the instructions.

A rubric is a YAML file (``emaudit study create --rubric FILE``), validated here before anything
is stored; every problem is one line naming the file and the field. Fields:

``name``
    A short name (exported with the ratings).
``show``
    What the rater sees besides the question: ``[answer]``, ``[reasoning]`` or ``[answer, reasoning]``.
    The reasoning trace is shown collapsible and inert, exactly like answers.
``scales``
    ``[alignment, coherence]`` (the two 0-100 sliders, required with every rating) or ``[]`` / ``none``.
``labels``
    ``em`` (today's five EM labels with their rules), or a mapping with ``select`` (``single`` or
    ``multiple``) and ``options``: a list of ``{key, text, help, example?, exclusive?}``. ``key`` is
    what is stored (lower-case letters, digits, ``_``); an ``exclusive`` option (e.g. "none of
    these") cannot be combined with others.
``instructions``
    Markdown shown before the first item (our own text: model text never goes through markdown).

A study without a stored rubric (``Study.rubric`` null) uses :data:`DEFAULT_RUBRIC`, today's EM
rubric, so older studies behave as before. Ratings under a rubric with its own label set store the
chosen keys in ``Rating.categories`` and their ``+``-joined form in ``Rating.label``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from emaudit.errors import InputError

SHOWABLE: Final = ("answer", "reasoning")
SCALE_NAMES: Final = ("alignment", "coherence")
_TOP_FIELDS: Final = ("name", "show", "scales", "labels", "instructions")
_OPTION_FIELDS: Final = ("key", "text", "help", "example", "exclusive")
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
LABEL_SEPARATOR: Final = "+"
"""Joins the chosen keys into ``Rating.label`` (keys cannot contain it)."""


@dataclass(frozen=True)
class LabelOption:
    """One label of a rubric's own label set."""

    key: str
    text: str
    help: str
    example: str | None = None
    exclusive: bool = False


@dataclass(frozen=True)
class Rubric:
    """A validated rubric (see the module docstring for the meaning of each field).

    Attributes:
        name: Short name.
        show: What the rater sees: a tuple of ``answer`` / ``reasoning``.
        scales: ``("alignment", "coherence")`` or ``()``.
        options: The rubric's own labels; empty when the rubric uses the EM labels.
        multiple: Whether several labels may be chosen (own label sets only).
        instructions: Markdown for the instructions page, or None for the app's EM text.
    """

    name: str
    show: tuple[str, ...] = ("answer",)
    scales: tuple[str, ...] = SCALE_NAMES
    options: tuple[LabelOption, ...] = field(default_factory=tuple)
    multiple: bool = False
    instructions: str | None = None

    @property
    def em_labels(self) -> bool:
        """Whether ratings use today's EM label set (``Rating.label`` a :class:`RatingLabel`)."""
        return not self.options

    @property
    def shows_reasoning(self) -> bool:
        """Whether the rater sees the reasoning trace."""
        return "reasoning" in self.show

    @property
    def keys(self) -> list[str]:
        """The label keys in the rubric's order."""
        return [option.key for option in self.options]

    def to_dict(self) -> dict[str, Any]:
        """The form stored in ``Study.rubric`` (and read back by :func:`rubric_from_dict`)."""
        labels: Any = (
            "em"
            if self.em_labels
            else {
                "select": "multiple" if self.multiple else "single",
                "options": [
                    {k: v for k, v in vars(option).items() if v not in (None, False)}
                    for option in self.options
                ],
            }
        )
        return {
            "name": self.name,
            "show": list(self.show),
            "scales": list(self.scales),
            "labels": labels,
            "instructions": self.instructions,
        }

    def categories_problem(self, chosen: list[str] | tuple[str, ...]) -> str | None:
        """Why ``chosen`` is not a valid choice of labels under this rubric, or None."""
        if not chosen:
            return "choose at least one label"
        unknown = [key for key in chosen if key not in self.keys]
        if unknown:
            return f"unknown label {unknown[0]!r}; use one of {', '.join(self.keys)}"
        if len(set(chosen)) != len(chosen):
            return "a label is chosen twice"
        if not self.multiple and len(chosen) > 1:
            return "choose one label (this rubric is single choice)"
        exclusive = [o.key for o in self.options if o.exclusive and o.key in chosen]
        if exclusive and len(chosen) > 1:
            return f"{exclusive[0]!r} cannot be combined with other labels"
        return None

    def canonical(self, chosen: list[str] | tuple[str, ...]) -> tuple[str, ...]:
        """The chosen keys in the rubric's order (so equal choices store equal labels)."""
        return tuple(key for key in self.keys if key in chosen)


DEFAULT_RUBRIC: Final = Rubric(name="em")
"""Today's EM rubric: the answer, both 0-100 scales, the five EM labels, the app's instructions."""


def study_rubric(stored: dict[str, Any] | None) -> Rubric:
    """The rubric of a study from its stored ``Study.rubric`` (None: :data:`DEFAULT_RUBRIC`)."""
    return DEFAULT_RUBRIC if stored is None else rubric_from_dict(stored, "study rubric")


def load_rubric(path: Path) -> Rubric:
    """Read and validate a rubric YAML file.

    Raises:
        InputError: the file is missing or not YAML, or a field is unknown, missing or invalid;
            one line naming the file and the field.
    """
    if not path.is_file():
        raise InputError(str(path), "no such file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise InputError(str(path), f"not valid YAML ({type(error).__name__})") from None
    return rubric_from_dict(data, str(path))


def rubric_from_dict(data: Any, source: str) -> Rubric:
    """Validate a parsed rubric; ``source`` names it in error messages."""

    def fail(problem: str, field_name: str | None = None) -> InputError:
        return InputError(source, problem, field=field_name)

    if not isinstance(data, dict):
        raise fail("a rubric is a YAML mapping with fields " + ", ".join(_TOP_FIELDS))
    for key in data:
        if key not in _TOP_FIELDS:
            raise fail(f"unknown field; the fields are {', '.join(_TOP_FIELDS)}", str(key))
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise fail("give the rubric a name (text)", "name")
    show = _show(data.get("show", ["answer"]), fail)
    scales = _scales(data.get("scales", list(SCALE_NAMES)), fail)
    options, multiple = _labels(data.get("labels", "em"), fail)
    if not options and tuple(scales) != SCALE_NAMES:
        raise fail("the em labels need both scales (alignment, coherence)", "scales")
    instructions = data.get("instructions")
    if instructions is not None and (not isinstance(instructions, str) or not instructions.strip()):
        raise fail("instructions are markdown text", "instructions")
    return Rubric(
        name=name.strip(),
        show=show,
        scales=scales,
        options=options,
        multiple=multiple,
        instructions=instructions,
    )


def _show(value: Any, fail: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise fail("list what the rater sees: answer, reasoning or both", "show")
    for item in value:
        if item not in SHOWABLE:
            raise fail(f"{item!r} cannot be shown; use answer and/or reasoning", "show")
    return tuple(dict.fromkeys(value))


def _scales(value: Any, fail: Any) -> tuple[str, ...]:
    if value in (None, "none", []):
        return ()
    if not isinstance(value, list) or sorted(value) != sorted(SCALE_NAMES):
        raise fail("use [alignment, coherence] (both 0-100 sliders) or none", "scales")
    return SCALE_NAMES


def _labels(value: Any, fail: Any) -> tuple[tuple[LabelOption, ...], bool]:
    if value == "em":
        return (), False
    if not isinstance(value, dict):
        raise fail("use em (the EM labels) or a mapping with select and options", "labels")
    for key in value:
        if key not in ("select", "options"):
            raise fail("unknown field; the fields are select, options", f"labels.{key}")
    select = value.get("select", "single")
    if select not in ("single", "multiple"):
        raise fail(f"{select!r}: use single or multiple", "labels.select")
    raw = value.get("options")
    if not isinstance(raw, list) or not raw:
        raise fail("the label set is empty; list at least two options", "labels.options")
    if len(raw) < 2:
        raise fail("list at least two options (a single label says nothing)", "labels.options")
    options: list[LabelOption] = []
    for index, entry in enumerate(raw):
        where = f"labels.options[{index}]"
        if not isinstance(entry, dict):
            raise fail("each option is a mapping with key, text and help", where)
        for key in entry:
            if key not in _OPTION_FIELDS:
                raise fail(f"unknown field; the fields are {', '.join(_OPTION_FIELDS)}", f"{where}.{key}")
        key = entry.get("key")
        if not isinstance(key, str) or not _KEY.match(key):
            raise fail("a key of lower-case letters, digits and _ (starting with a letter)", f"{where}.key")
        if key in {o.key for o in options}:
            raise fail(f"key {key!r} is used twice", f"{where}.key")
        for text_field in ("text", "help"):
            text = entry.get(text_field)
            if not isinstance(text, str) or not text.strip():
                raise fail("required (text)", f"{where}.{text_field}")
        example = entry.get("example")
        if example is not None and not isinstance(example, str):
            raise fail("an example is text", f"{where}.example")
        exclusive = entry.get("exclusive", False)
        if not isinstance(exclusive, bool):
            raise fail("true or false", f"{where}.exclusive")
        options.append(LabelOption(key, entry["text"].strip(), entry["help"].strip(), example, exclusive))
    return tuple(options), select == "multiple"
