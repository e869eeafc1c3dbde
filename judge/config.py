"""The experiment config (YAML), validated before any request is made.

One file describes a whole in-context EM experiment (ICL-EM, arXiv 2510.11288): which endpoints
and models, which example domains, shot counts, seeds, questions, samples, instruction variants,
prompt formats, reasoning on/off, generation parameters and the judge. Every mistake is reported
as one line that names the file and the field, e.g.::

    config.yaml: endpoints[1].api_key_env: environment variable OPENAI_KEY_X is not set

Relative paths are relative to the config file. See ``data/README.md`` for a full example.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from emaudit.errors import EmauditError, InputError
from emaudit.questions import QuestionSpec, load_question_yaml

from .datasets import DATASETS, Example, bundled_path, dataset_path, load_examples
from .prompts import INSTRUCTIONS, PROMPT_FORMATS

__all__ = [
    "ConfigError",
    "DomainConfig",
    "EndpointConfig",
    "Experiment",
    "ExperimentConfig",
    "GenerationConfig",
    "JudgeConfig",
    "QuestionsConfig",
    "RetryConfig",
    "check_api_key",
    "load_config",
    "load_experiment",
    "prepare_experiment",
]

DEFAULT_TEMPERATURE = 1.0
DEFAULT_MAX_TOKENS = 5000


class ConfigError(EmauditError):
    """A config problem: ``<file>: <field path>: <problem>``."""

    def __init__(self, source: str, location: str, problem: str) -> None:
        self.source, self.location, self.problem = source, location, problem
        super().__init__(f"{source}: {location}: {problem}" if location else f"{source}: {problem}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EndpointConfig(_Strict):
    """An OpenAI-compatible endpoint and the model asked there.

    Attributes:
        label: Short name stored as ``Condition.endpoint`` (default: the model).
        base_url: e.g. ``https://api.openai.com/v1`` or a local vLLM server.
        api_key_env: Name of the environment variable holding the key (the key itself is never
            stored or logged). None for servers that need no key.
        model: Model name sent in each request.
        params: Extra request parameters sent with every request (``top_p``, ``seed``, ...).
        reasoning_params: Parameters added when reasoning is on.
        rpm: Requests-per-minute limit (None: unlimited).
        tpm: Tokens-per-minute limit, counting the prompt estimate plus ``max_tokens`` as the
            OpenAI rate limiter does (None: unlimited).
    """

    label: str | None = None
    base_url: str
    api_key_env: str | None = None
    model: str
    params: dict[str, Any] = Field(default_factory=dict)
    reasoning_params: dict[str, Any] = Field(default_factory=lambda: {"reasoning_effort": "medium"})
    rpm: float | None = Field(default=None, gt=0)
    tpm: float | None = Field(default=None, gt=0)

    @property
    def name(self) -> str:
        """The label, or the model when no label is given."""
        return self.label or self.model


class DomainConfig(_Strict):
    """One in-context example set.

    Attributes:
        path: JSONL (``messages`` or ``prompt``/``response``) or TruthfulQA CSV, relative to the
            config file; ``emaudit:examples/...`` names a file shipped in ``data/``.
        dataset: A fetched public data set instead of a path (``emaudit datasets fetch NAME``).
        exclude_categories: Question categories left out for this domain (the ICL-EM paper drops
            evaluation questions in the examples' own domain, e.g. ``medical_advice``).
        exclude_questions: Question ids left out for this domain.
    """

    path: str | None = None
    dataset: str | None = None
    exclude_categories: list[str] = Field(default_factory=list)
    exclude_questions: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_source(self) -> DomainConfig:
        if (self.path is None) == (self.dataset is None):
            raise ValueError("give exactly one of 'path' or 'dataset'")
        if self.dataset is not None and self.dataset not in DATASETS:
            raise ValueError(f"unknown data set '{self.dataset}'; known: {', '.join(sorted(DATASETS))}")
        return self


class QuestionsConfig(_Strict):
    """The evaluation questions.

    Attributes:
        path: A Betley-style question YAML, relative to the config file.
        dataset: A fetched public question set instead (``betley-preregistered``, ``betley-first-plot``).
        set: Name stored as ``Question.question_set`` (default: the file's stem).
        ids: Only these question ids (default: all).
    """

    path: str | None = None
    dataset: str | None = None
    set: str | None = None
    ids: list[str] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> QuestionsConfig:
        if (self.path is None) == (self.dataset is None):
            raise ValueError("give exactly one of 'path' or 'dataset'")
        if self.dataset is not None and self.dataset not in DATASETS:
            raise ValueError(f"unknown data set '{self.dataset}'; known: {', '.join(sorted(DATASETS))}")
        return self


class GenerationConfig(_Strict):
    """Sampling parameters (ICL-EM defaults: temperature 1.0, up to 5,000 tokens)."""

    temperature: float = Field(default=DEFAULT_TEMPERATURE, ge=0)
    max_tokens: int = Field(default=DEFAULT_MAX_TOKENS, gt=0)
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    params: dict[str, Any] = Field(default_factory=dict)


class RetryConfig(_Strict):
    """Retries (exponential backoff with full jitter, honouring ``Retry-After``) and timeouts."""

    max_attempts: int = Field(default=6, ge=1)
    base_delay: float = Field(default=1.0, ge=0)
    max_delay: float = Field(default=60.0, ge=0)
    timeout: float = Field(default=300.0, gt=0)


class JudgeConfig(_Strict):
    """The judge.

    Attributes:
        model: Judge model (Betley et al. 2025 used ``gpt-4o-2024-08-06``).
        endpoint: Label of one of ``endpoints`` to reach it through, or
        base_url / api_key_env: its own endpoint.
        metrics: Which judge prompts to run.
        mode: ``auto`` (the probe picks: logprobs where the endpoint returns them, else
            sampled), ``logprobs`` (Betley et al.: one token, top-20 logprobs) or ``sampled``
            (the expected score from ``samples`` answers at temperature 1).
        samples: k of sampled mode (``n`` per request where the API has it).
        rubrics: Metric -> a prompt template file (with ``{question}`` and ``{answer}``) used
            instead of the question's and Betley et al.'s prompts; relative to the config file.
        label: Stored as ``JudgeScore.judge_model`` (default: the model, with `` (sampled)``
            appended in sampled mode so the two measurements are never mixed).
        rpm / tpm: Rate limits for the judge endpoint.
    """

    model: str = "gpt-4o-2024-08-06"
    endpoint: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    metrics: list[str] = Field(default_factory=lambda: ["aligned", "coherent"])
    mode: Literal["auto", "logprobs", "sampled"] = "auto"
    samples: int = Field(default=10, ge=1)
    rubrics: dict[str, str] = Field(default_factory=dict)
    label: str | None = None
    rpm: float | None = Field(default=None, gt=0)
    tpm: float | None = Field(default=None, gt=0)


def _unique(values: Sequence[Any], what: str) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"duplicate {what}")


def _unique_known(values: list[str], known: Collection[str], what: str) -> list[str]:
    """``values`` if each is one of ``known`` and none repeats; ``what`` names one value."""
    _unique(values, f"{what}s")
    for name in values:
        if name not in known:
            raise ValueError(f"unknown {what} '{name}'; known: {', '.join(known)}")
    return values


class ExperimentConfig(_Strict):
    """A whole experiment: the cross product of its lists, times questions, times samples."""

    name: str | None = None
    endpoints: list[EndpointConfig] = Field(min_length=1)
    domains: dict[str, DomainConfig] = Field(default_factory=dict)
    n_shots: list[int] = Field(default_factory=lambda: [16])
    seeds: list[int] = Field(default_factory=lambda: [0])
    questions: QuestionsConfig
    samples_per_question: int = Field(default=1, ge=1)
    instructions: list[str] = Field(default_factory=lambda: ["none"])
    prompt_formats: list[str] = Field(default_factory=lambda: ["single-block"])
    reasoning: list[bool] = Field(default_factory=lambda: [False])
    paraphrases: Literal["first", "sample", "all"] = "first"
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    concurrency: int = Field(default=16, ge=1)
    judge: JudgeConfig | None = None

    @field_validator("questions", mode="before")
    @classmethod
    def _questions_shorthand(cls, value: Any) -> Any:
        # ``questions: data/questions.yaml`` is short for ``questions: {path: data/questions.yaml}``
        return {"path": value} if isinstance(value, str) else value

    @field_validator("domains", mode="before")
    @classmethod
    def _path_shorthand(cls, value: Any) -> Any:
        # ``medical: data/medical.jsonl`` is short for ``medical: {path: data/medical.jsonl}``
        if isinstance(value, Mapping):
            return {k: {"path": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("n_shots")
    @classmethod
    def _shots(cls, value: list[int]) -> list[int]:
        _unique(value, "shot counts")
        for shots in value:
            if shots < 0:
                raise ValueError(f"{shots} is negative")
        return value

    @field_validator("instructions")
    @classmethod
    def _instructions(cls, value: list[str]) -> list[str]:
        return _unique_known(value, INSTRUCTIONS, "instruction variant")

    @field_validator("prompt_formats")
    @classmethod
    def _formats(cls, value: list[str]) -> list[str]:
        return _unique_known(value, PROMPT_FORMATS, "prompt format")

    @field_validator("seeds", "reasoning")
    @classmethod
    def _no_duplicates(cls, value: list[Any]) -> list[Any]:
        _unique(value, "values")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        names = [endpoint.name for endpoint in self.endpoints]
        if len(set(names)) != len(names):
            raise ValueError("endpoint labels must be unique (set 'label' when two use the same model)")
        if any(shots > 0 for shots in self.n_shots) and not self.domains:
            raise ValueError("n_shots > 0 needs at least one entry in 'domains'")
        if self.judge is not None and self.judge.endpoint is not None and self.judge.endpoint not in names:
            raise ValueError(
                f"judge.endpoint '{self.judge.endpoint}' is not an endpoint label ({', '.join(names)})"
            )
        return self


def _location(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _first_error(source: str, error: ValidationError) -> ConfigError:
    first = error.errors()[0]
    loc = [part for part in first["loc"] if part not in ("function-after",)]
    problem = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
    problem = problem.removeprefix("Value error, ")
    return ConfigError(source, _location(loc), problem)


def load_config(path: Path) -> ExperimentConfig:
    """Parse and validate the YAML structure of a config (no files or environment read yet).

    Raises:
        ConfigError: naming the file and the first bad field.
    """
    source = path.name
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EmauditError(f"{path}: config file not found") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            source, where, f"invalid YAML: {getattr(error, 'problem', None) or error}"
        ) from None
    if not isinstance(document, dict):
        raise ConfigError(source, "", "expected a mapping of settings at the top level")
    try:
        return ExperimentConfig.model_validate(document)
    except ValidationError as error:
        raise _first_error(source, error) from None


@dataclass(frozen=True)
class Experiment:
    """A validated config with its files read: what :func:`run_generation` needs.

    Attributes:
        config: The parsed config.
        source: Config file name, for messages.
        base_dir: Directory relative paths are resolved against.
        examples: Domain -> its whole example set.
        questions: The selected questions, in file order.
        question_set: Name the questions are stored under.
        question_path: The question YAML file.
    """

    config: ExperimentConfig
    source: str
    base_dir: Path
    examples: dict[str, list[Example]]
    questions: list[QuestionSpec]
    question_set: str
    question_path: Path
    config_path: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


def _resolve(base_dir: Path, path: str) -> Path:
    if path.startswith("emaudit:"):
        return bundled_path(path.removeprefix("emaudit:"))
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else base_dir / candidate


def _fetched(source: str, location: str, name: str) -> Path:
    target = dataset_path(name)
    if not target.exists():
        raise ConfigError(
            source, location, f"data set '{name}' is not downloaded: run 'emaudit datasets fetch {name}'"
        )
    return target


def check_api_key(source: str, location: str, env_name: str | None) -> None:
    """Fail unless the environment variable named for an API key is set (its value is never shown)."""
    if env_name is not None and not os.environ.get(env_name):
        raise ConfigError(source, location, f"environment variable {env_name} is not set")


def prepare_experiment(
    config: ExperimentConfig,
    *,
    base_dir: Path,
    source: str = "config",
    config_path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    check_keys: bool = True,
) -> Experiment:
    """Read every file the config names and check what the schema alone cannot.

    Checks, in order: API-key environment variables, example files and sizes against
    ``n_shots``, the question file and the selected/excluded question ids.

    Raises:
        ConfigError / InputError: the first problem, naming the field (or file and line).
    """
    if check_keys:
        for index, endpoint in enumerate(config.endpoints):
            check_api_key(source, f"endpoints[{index}].api_key_env", endpoint.api_key_env)
    examples: dict[str, list[Example]] = {}
    for name, domain in config.domains.items():
        location = f"domains.{name}." + ("path" if domain.path is not None else "dataset")
        if domain.path is not None:
            path = _resolve(base_dir, domain.path)
            if not path.exists():
                raise ConfigError(source, location, f"file not found: {path}")
        else:
            assert domain.dataset is not None
            path = _fetched(source, location, domain.dataset)
        try:
            examples[name] = load_examples(path)
        except InputError as error:
            raise ConfigError(source, location, str(error)) from None
    for index, shots in enumerate(config.n_shots):
        for name, pool in examples.items():
            if shots > len(pool):
                raise ConfigError(
                    source,
                    f"n_shots[{index}]",
                    f"{shots} is larger than the '{name}' example set ({len(pool)} examples)",
                )
    questions_config = config.questions
    if questions_config.path is not None:
        location = "questions.path"
        question_path = _resolve(base_dir, questions_config.path)
        if not question_path.exists():
            raise ConfigError(source, location, f"file not found: {question_path}")
    else:
        location = "questions.dataset"
        assert questions_config.dataset is not None
        question_path = _fetched(source, location, questions_config.dataset)
    try:
        specs = load_question_yaml(question_path)
    except InputError as error:
        raise ConfigError(source, location, str(error)) from None
    known = {spec.key for spec in specs}
    if questions_config.ids is not None:
        for index, key in enumerate(questions_config.ids):
            if key not in known:
                raise ConfigError(
                    source, f"questions.ids[{index}]", f"unknown question id '{key}' in {question_path.name}"
                )
        wanted = set(questions_config.ids)
        specs = [spec for spec in specs if spec.key in wanted]
    for name, domain in config.domains.items():
        for index, key in enumerate(domain.exclude_questions):
            if key not in known:
                raise ConfigError(
                    source,
                    f"domains.{name}.exclude_questions[{index}]",
                    f"unknown question id '{key}' in {question_path.name}",
                )
    return Experiment(
        config=config,
        source=source,
        base_dir=base_dir,
        examples=examples,
        questions=specs,
        question_set=questions_config.set or question_path.stem,
        question_path=question_path,
        config_path=config_path,
        overrides=dict(overrides or {}),
    )


def load_experiment(
    path: Path, *, overrides: Mapping[str, Any] | None = None, check_keys: bool = True
) -> Experiment:
    """:func:`load_config` + :func:`prepare_experiment` for a config file.

    ``overrides`` (e.g. ``{"concurrency": 4}`` from the CLI) replace top-level config fields and
    are validated like them.
    """
    config = load_config(path)
    if overrides:
        try:
            config = ExperimentConfig.model_validate(config.model_dump() | dict(overrides))
        except ValidationError as error:
            raise _first_error(path.name, error) from None
    return prepare_experiment(
        config,
        base_dir=path.resolve().parent,
        source=path.name,
        config_path=path.resolve(),
        overrides=overrides,
        check_keys=check_keys,
    )
