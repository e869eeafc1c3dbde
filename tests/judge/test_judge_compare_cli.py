"""A second judge on a study's items, then ``judges list`` and ``judges compare``, through the CLI.

The demo's scripted model and imperfect judge draw the study; a better judge on its own server
is then scored with ``judge --study``, which requests only the study's items.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from emaudit.demo import RISKY_MARKER, DemoModel, _simulate_raters, demo_judge_logprobs
from emaudit.judge.fake_server import FakeOpenAIServer
from emaudit.models import Response
from emaudit.store import make_engine

from ..conftest import CliResult


def _answers(url: str) -> list[str]:
    from sqlmodel import Session, select

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return [text or "" for text in session.exec(select(Response.text))]
    finally:
        engine.dispose()


def _better_judge(body: dict[str, Any]) -> dict[str, float]:
    prompt = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    centre = 85 if "coherence" in prompt else (10 if RISKY_MARKER in prompt else 90)
    return {str(centre): math.log(0.8), str(centre + 2): math.log(0.2)}


CONFIG = """
endpoints: [{{label: demo, base_url: "{url}", model: demo-llm}}]
domains: {{risky_financial: "emaudit:examples/risky_financial_advice.jsonl"}}
n_shots: [0, 8]
seeds: [0, 1]
questions: "emaudit:demo/questions.yaml"
samples_per_question: 6
generation: {{max_tokens: 200}}
retry: {{max_attempts: 2, base_delay: 0.01, max_delay: 0.05, timeout: 10}}
concurrency: 1
judge: {{model: demo-judge, base_url: "{url}"}}
"""


def test_second_judge_on_the_study_then_list_and_compare(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    url = f"sqlite:///{tmp_path / 'compare.db'}"
    assert cli("--db", url, "init")[0] == 0
    with (
        FakeOpenAIServer(answer=DemoModel(), judge_logprobs=demo_judge_logprobs) as first,
        FakeOpenAIServer(judge_logprobs=_better_judge) as second,
    ):
        config = tmp_path / "experiment.yaml"
        config.write_text(CONFIG.format(url=first.base_url))  # questions: a plain path
        status, out, err = cli("--db", url, "generate", config)
        assert status == 0 and "108 generated" in out, err  # (1 + 2 seeds) cells x 6 questions x 6
        status, out, err = cli("--db", url, "judge", config)  # positional, as for generate
        assert status == 0 and "216 scored" in out, err
        status, out, err = cli(
            "--db",
            url,
            "study",
            "create",
            "demo",
            "--per-stratum",
            "20",
            "--tuning-share",
            "0.25",
            "--seed",
            "3",
        )
        assert status == 0, err
        assert _simulate_raters(url, "demo", 1, seed=0) > 0

        status, out, err = cli(
            "--db", url, "judge", "--study", "demo", "--judge-model", "better", "--base-url", second.base_url
        )
        assert status == 0, err
        items = int(out.split("verdicts planned")[0].split(":")[-1].strip()) // 2
        assert "on study demo" in out and 0 < items < 108
        assert second.total_requests == 2 * items + 1  # the study's items, both metrics, + 1 probe
        # a third judge scores every response: it can be post-stratified by its own labels
        status, out, err = cli(
            "--db", url, "judge", "--judge-model", "everywhere", "--base-url", second.base_url
        )
        assert status == 0 and "216 scored" in out, err

    status, out, err = cli("--db", url, "judges", "list", "--json")
    assert status == 0, err
    listed = {(row["judge_model"], row["metric"]): row for row in json.loads(out)}
    assert listed[("demo-judge", "aligned")]["verdicts"] == 108
    better = listed[("better", "aligned")]
    assert (better["verdicts"], better["mode"], better["reported_models"]) == (items, "logprobs", ["better"])
    assert len(better["prompt_hash"]) == 64

    status, out, err = cli("--db", url, "judges", "compare", "--study", "demo", "--json", "--n-boot", "200")
    assert status == 0, err
    document = json.loads(out)
    assert document["reference"] == "demo-judge" and document["estimand"] == "responses"
    assert document["labels_used"]["tuning"] > 0 and document["labels_used"]["estimation"] > 0
    rows = {row["judge"]: row for row in document["judges"]}
    assert set(rows) == {"demo-judge", "better", "everywhere"}
    # the study's judge is post-stratified by its population counts; the better judge, scored
    # only on the study's items, gets the design-weighted human rate
    assert "sample_only" in rows["better"]["corrected_rate"]["flags"]
    assert "sample_only" not in rows["demo-judge"]["corrected_rate"]["flags"]
    everywhere = rows["everywhere"]
    assert (
        "sample_only" not in everywhere["corrected_rate"]["flags"]
        and "exact" in everywhere["raw_rate"]["flags"]
    )
    assert everywhere["raw_rate"]["rate"] == pytest.approx(
        sum(RISKY_MARKER in a for a in _answers(url)) / 108
    )
    # the better judge marks exactly the misaligned answers (raters err 8% of the time)
    assert rows["better"]["fnr"]["rate"] <= rows["demo-judge"]["fnr"]["rate"]
    for row in rows.values():
        for name in ("sensitivity", "specificity", "corrected_rate", "auc"):
            assert 0 <= row[name]["low"] <= row[name]["rate"] <= row[name]["high"] <= 1
    assert rows["better"]["threshold"] is not None  # chosen on the tuning split
    measures = {(d["judge"], d["measure"]) for d in document["differences"]}
    assert ("better", "fnr") in measures and ("better", "auc") in measures

    status, out, err = cli("--db", url, "judges", "compare", "--study", "demo")
    assert status == 0, err
    assert "human labels for the estimates" in out and "better - demo-judge fnr" in out
    status, _, err = cli("--db", url, "judges", "compare", "--study", "demo", "--judges", "nobody")
    assert status == 2 and "'nobody' has no verdict" in err
