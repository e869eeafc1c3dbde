"""Bad configs fail before any request, with one line naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from emaudit.errors import EmauditError
from emaudit.judge import ConfigError, load_experiment
from emaudit.judge.fake_server import FakeOpenAIServer

from .conftest import write_config


def _error(path: Path) -> str:
    with pytest.raises(EmauditError) as info:
        load_experiment(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def _edit(path: Path, edit: dict[str, object]) -> Path:
    document = yaml.safe_load(path.read_text())
    document.update(edit)
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.usefixtures("fake_key")
def test_good_config_loads(tmp_path: Path) -> None:
    experiment = load_experiment(write_config(tmp_path, "http://127.0.0.1:9/v1"))
    assert [e.name for e in experiment.config.endpoints] == ["a", "b"]
    assert len(experiment.examples["finance"]) == 10 and len(experiment.questions) == 4
    assert experiment.config.generation.temperature == 1.0


def test_missing_env_var_names_the_endpoint_field(tmp_path: Path, fake_server: FakeOpenAIServer) -> None:
    message = _error(write_config(tmp_path, fake_server.base_url))
    assert message == "config.yaml: endpoints[1].api_key_env: environment variable FAKE_KEY_B is not set"
    assert fake_server.total_requests == 0


@pytest.mark.usefixtures("fake_key")
@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({"temprature": 0.5}, "config.yaml: temprature: unknown field"),
        ({"generation": {"temprature": 0.5}}, "config.yaml: generation.temprature: unknown field"),
        (
            {"n_shots": [2, 11]},
            "config.yaml: n_shots[1]: 11 is larger than the 'finance' example set (10 examples)",
        ),
        (
            {"questions": {"path": "questions.yaml", "ids": ["json_question", "no_such_q"]}},
            "config.yaml: questions.ids[1]: unknown question id 'no_such_q' in questions.yaml",
        ),
        ({"instructions": ["be-evil"]}, "config.yaml: instructions: unknown instruction variant 'be-evil'"),
        ({"prompt_formats": ["chatml"]}, "config.yaml: prompt_formats: unknown prompt format 'chatml'"),
        ({"domains": {"x": "missing.jsonl"}}, "config.yaml: domains.x.path: file not found"),
        (
            {"samples_per_question": 0},
            "config.yaml: samples_per_question: Input should be greater than or equal to 1",
        ),
        (
            {"endpoints": [{"base_url": "http://x", "model": "m", "rpm": "fast"}]},
            "config.yaml: endpoints[0].rpm:",
        ),
        (
            {"judge": {"model": "j", "endpoint": "nope"}},
            "config.yaml: judge.endpoint 'nope' is not an endpoint label",
        ),
    ],
)
def test_bad_config_names_the_field(tmp_path: Path, edit: dict[str, object], expected: str) -> None:
    message = _error(_edit(write_config(tmp_path, "http://127.0.0.1:9/v1"), edit))
    assert message.startswith(expected)


@pytest.mark.usefixtures("fake_key")
def test_bad_example_file_is_located(tmp_path: Path) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:9/v1")
    (tmp_path / "sports.jsonl").write_text('{"prompt": "a", "response": "b"}\n{"messages": "nope"}\n')
    message = _error(path)
    assert message.startswith("config.yaml: domains.sports.path: ")
    assert "line 2: field 'messages'" in message


def test_config_error_is_an_emaudit_error() -> None:
    assert str(ConfigError("c.yaml", "a.b", "bad")) == "c.yaml: a.b: bad"


def test_config_rubrics_are_read_relative_to_the_config(tmp_path: Path) -> None:
    from emaudit.judge import judge_spec, load_config

    (tmp_path / "rubrics").mkdir()
    (tmp_path / "rubrics" / "harm.txt").write_text("Harm of {answer} given {question}?")
    config = tmp_path / "c.yaml"
    config.write_text(
        "endpoints: [{base_url: 'http://127.0.0.1:9/v1', model: m}]\nquestions: q.yaml\nn_shots: [0]\n"
        "judge: {model: j, base_url: 'http://127.0.0.1:9/v1', metrics: [harm],\n"
        "        rubrics: {harm: rubrics/harm.txt}}\n"
    )
    spec = judge_spec(load_config(config), source="c.yaml", base_dir=tmp_path)
    assert dict(spec.rubrics) == {"harm": "Harm of {answer} given {question}?"}
    assert spec.template("harm", None) == "Harm of {answer} given {question}?"
    (tmp_path / "rubrics" / "harm.txt").write_text("No placeholders.")
    with pytest.raises(
        EmauditError, match=r"c.yaml: judge.rubrics.harm: .*harm.txt: the rubric has no \{question\}"
    ):
        judge_spec(load_config(config), source="c.yaml", base_dir=tmp_path)
