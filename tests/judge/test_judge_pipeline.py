"""Generation and judging end to end against the local server (real openai client, real HTTP)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from emaudit.judge import (
    build_messages,
    judge_spec,
    load_experiment,
    plan_prompts,
    run_generation,
    run_judging,
    sample_examples,
)
from emaudit.judge.fake_server import FakeOpenAIServer, prompt_key
from emaudit.models import Condition, JudgeScore, Question, Response

from .conftest import write_config


@pytest.mark.usefixtures("fake_key")
def test_grid_generates_96_responses_and_192_scores(
    engine: Engine, fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    experiment = load_experiment(write_config(tmp_path, fake_server.base_url))

    summary = run_generation(engine, experiment)

    # 2 endpoints x 2 domains x 2 shot counts x 2 seeds x 3 questions x 2 samples
    assert (summary.planned, summary.completed, summary.failed) == (96, 96, 0)
    with Session(engine) as session:
        responses = session.exec(select(Response)).all()
        conditions = {c.id: c for c in session.exec(select(Condition)).all()}
        questions = {q.id: q for q in session.exec(select(Question)).all()}
    assert len(responses) == 96 and len(conditions) == 16
    assert all(r.text and r.error is None and r.attempts == 1 for r in responses)
    # the medical question is excluded in both domains (by category, and by id)
    assert {questions[r.question_id].key for r in responses} == {
        "0_creative_writing_0",
        "9_problems_with_humans_0",
        "json_question",
    }
    # the stored messages are exactly the builders' output
    for response in responses:
        condition = conditions[response.condition_id]
        question = questions[response.question_id]
        assert condition.domain is not None and condition.seed is not None
        examples = sample_examples(
            experiment.examples[condition.domain],
            condition.n_shots,
            seed=condition.seed,
            domain=condition.domain,
        )
        expected = build_messages(
            question.text, examples, prompt_format="single-block", system_prompt=question.system_prompt
        )
        assert response.messages == expected
    # each condition stores the config it was generated from (endpoint key *names* only)
    some = next(iter(conditions.values()))
    assert (
        some.config is not None and some.config["experiment"]["endpoints"][1]["api_key_env"] == "FAKE_KEY_B"
    )
    assert "sk-test" not in str(some.config)
    # each distinct prompt was sent samples_per_question times, no more
    assert fake_server.total_requests == 96
    assert set(fake_server.prompt_counts().values()) == {2}

    judged = run_judging(engine, judge_spec(experiment.config, source="config.yaml"), concurrency=8)

    assert (judged.planned, judged.scored, judged.failed) == (192, 192, 0)
    with Session(engine) as session:
        scores = session.exec(select(JudgeScore)).all()
    assert len(scores) == 192
    assert Counter(s.metric for s in scores) == {"aligned": 96, "coherent": 96}
    assert all(s.judge_model == "judge-1" and s.score is not None and s.top_logprobs for s in scores)
    assert all(s.number_mass is not None and abs(s.number_mass - 0.95) < 1e-9 for s in scores)

    # re-running both is a no-op: nothing stored is requested again
    before = fake_server.total_requests
    assert run_generation(engine, experiment).skipped == 96
    assert run_judging(engine, judge_spec(experiment.config)).skipped == 192
    assert fake_server.total_requests == before


@pytest.mark.usefixtures("fake_key")
def test_second_judge_model_scores_the_same_responses_in_its_own_rows(
    sqlite_engine: Engine, fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    experiment = load_experiment(write_config(tmp_path, fake_server.base_url, n_shots=[2], seeds=[0]))
    run_generation(sqlite_engine, experiment)
    first = run_judging(sqlite_engine, judge_spec(experiment.config, model="judge-1"))
    second = run_judging(sqlite_engine, judge_spec(experiment.config, model="judge-2", metrics=["aligned"]))
    sampled = run_judging(
        sqlite_engine, judge_spec(experiment.config, model="judge-1", mode="sampled", metrics=["aligned"])
    )

    assert (first.scored, second.scored, sampled.scored) == (48, 24, 24)
    with Session(sqlite_engine) as session:
        by_judge = Counter(s.judge_model for s in session.exec(select(JudgeScore)))
        sampled_rows = session.exec(
            select(JudgeScore).where(JudgeScore.judge_model == "judge-1 (sampled)")
        ).all()
    assert by_judge == {"judge-1": 48, "judge-2": 24, "judge-1 (sampled)": 24}
    # the sampled judge's score is the mean of its k = 10 parsed samples (no logprobs kept)
    for row in sampled_rows:
        assert row.score is not None and row.top_logprobs is None and row.mode == "sampled"
        assert row.samples == 10 and row.sample_scores is not None and len(row.sample_scores) == 10
        assert row.raw is not None and len(row.raw.splitlines()) == 10
        numeric = [v for v in row.sample_scores if v is not None]
        assert row.score == pytest.approx(sum(numeric) / len(numeric))


@pytest.mark.usefixtures("fake_key")
def test_multi_turn_instruction_and_reasoning_cells(
    sqlite_engine: Engine, fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    path = write_config(
        tmp_path,
        fake_server.base_url,
        endpoints=[{"base_url": fake_server.base_url, "model": "m"}],
        n_shots=[0, 3],
        seeds=[5],
        samples_per_question=1,
        prompt_formats=["multi-turn"],
        instructions=["prioritize-safety"],
        reasoning=[True],
        domains={"finance": "finance.jsonl"},
        judge=None,
    )
    experiment = load_experiment(path)
    plans = plan_prompts(experiment)
    summary = run_generation(sqlite_engine, experiment)

    # zero-shot baseline (no domain) + 3-shot finance cell, 4 questions each
    assert summary.completed == 8 and len({p.cell.key for p in plans}) == 2
    with Session(sqlite_engine) as session:
        rows = session.exec(select(Response, Condition).join(Condition)).all()
    for response, condition in rows:
        assert response.reasoning == fake_server.reasoning  # kept from reasoning_content
        assert condition.reasoning and condition.instruction == "prioritize-safety"
        assert response.messages is not None and response.messages[0]["role"] == "system"
        if condition.n_shots:
            roles = [m["role"] for m in response.messages]
            assert roles[1:] == ["user", "assistant"] * 3 + ["user"]
        else:
            assert condition.domain is None and len(response.messages) == 2


def test_dry_run_counts_without_requests_or_writes(
    sqlite_engine: Engine, fake_server: FakeOpenAIServer, tmp_path: Path, fake_key: None
) -> None:
    experiment = load_experiment(write_config(tmp_path, fake_server.base_url))
    summary = run_generation(sqlite_engine, experiment, dry_run=True)
    assert summary.to_request == 96 and summary.max_completion_tokens == 96 * 200
    assert summary.estimated_prompt_tokens > 0
    assert fake_server.total_requests == 0
    with Session(sqlite_engine) as session:
        assert session.exec(select(Condition)).first() is None


def test_prompt_key_matches_what_the_client_sends(
    fake_server: FakeOpenAIServer, tmp_path: Path, sqlite_engine: Engine, fake_key: None
) -> None:
    experiment = load_experiment(
        write_config(tmp_path, fake_server.base_url, n_shots=[2], seeds=[0], samples_per_question=1)
    )
    run_generation(sqlite_engine, experiment)
    expected = {
        prompt_key({"model": plan.cell.endpoint.model, "messages": plan.messages})
        for plan in plan_prompts(experiment)
    }
    assert set(fake_server.prompt_counts()) == expected
