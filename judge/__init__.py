"""Generation and judging: reproduce in-context EM experiments and judge them like the literature.

* :mod:`~emaudit.judge.config` — the experiment config (YAML, validated before any request);
* :mod:`~emaudit.judge.prompts` — ``single-block`` / ``multi-turn`` prompt builders, seeded examples;
* :mod:`~emaudit.judge.datasets` — example-set loaders and ``datasets fetch``;
* :mod:`~emaudit.judge.client` — one robust chat call (limits, retries, timeouts);
* :mod:`~emaudit.judge.pipeline` — generation into ``Response`` rows, resumable;
* :mod:`~emaudit.judge.judging` / :mod:`~emaudit.judge.scoring` — Betley et al. (2025) judging;
* :mod:`~emaudit.judge.batch` — the same judging through the OpenAI Batch API, resumable;
* :mod:`~emaudit.judge.probe` — what a judge endpoint can do (logprobs, numbers, reasoning parameters);
* :mod:`~emaudit.judge.inventory` / :mod:`~emaudit.judge.compare` — the judges in the store, and
  their comparison on a study's human labels;
* :mod:`~emaudit.judge.fake_server` — a local OpenAI-compatible server for tests and the demo.

References: Betley et al. (2025), "Emergent Misalignment: Narrow finetuning can produce broadly
misaligned LLMs"; "Emergent Misalignment via In-Context Learning" (arXiv 2510.11288).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names load on first use, so the CLI starts without the heavy libraries
    from .batch import (
        BATCH_ENDPOINT,
        BatchJudgeSummary,
        batch_state_path,
        run_judging_batch,
        run_judging_batch_async,
    )
    from .client import ChatClient, ChatResult, RateLimiter, RequestFailed, RetryPolicy
    from .compare import study_comparison, study_judges
    from .config import (
        ConfigError,
        DomainConfig,
        EndpointConfig,
        Experiment,
        ExperimentConfig,
        GenerationConfig,
        JudgeConfig,
        QuestionsConfig,
        RetryConfig,
        load_config,
        load_experiment,
        prepare_experiment,
    )
    from .datasets import DATASETS, Example, PublicDataset, fetch_dataset, load_examples
    from .inventory import JudgeInventoryRow, judge_inventory
    from .judging import (
        DEFAULT_JUDGE_PROMPTS,
        JudgeSpec,
        JudgeSummary,
        JudgeUnavailable,
        fill_judge_prompt,
        judge_spec,
        load_rubric,
        probe_judge,
        prompt_hash,
        request_hash,
        run_judging,
        run_judging_async,
    )
    from .pipeline import (
        Cell,
        GenerationSummary,
        PromptPlan,
        expand_cells,
        plan_prompts,
        run_generation,
        run_generation_async,
    )
    from .probe import ProbeResult, probe_endpoint
    from .prompts import INSTRUCTIONS, PROMPT_FORMATS, build_messages, sample_examples
    from .scoring import (
        MIN_NUMBER_MASS,
        Special,
        Verdict,
        integer_token,
        parse_sampled_answer,
        score_from_samples,
        score_from_top_logprobs,
    )


_PUBLIC: dict[str, str] = {
    "JudgeUnavailable": "emaudit.judge.judging",
    "load_rubric": "emaudit.judge.judging",
    "probe_judge": "emaudit.judge.judging",
    "request_hash": "emaudit.judge.judging",
    "ProbeResult": "emaudit.judge.probe",
    "probe_endpoint": "emaudit.judge.probe",
    "score_from_samples": "emaudit.judge.scoring",
    "JudgeInventoryRow": "emaudit.judge.inventory",
    "judge_inventory": "emaudit.judge.inventory",
    "study_comparison": "emaudit.judge.compare",
    "study_judges": "emaudit.judge.compare",
    "BATCH_ENDPOINT": "emaudit.judge.batch",
    "BatchJudgeSummary": "emaudit.judge.batch",
    "batch_state_path": "emaudit.judge.batch",
    "run_judging_batch": "emaudit.judge.batch",
    "run_judging_batch_async": "emaudit.judge.batch",
    "ChatClient": "emaudit.judge.client",
    "ChatResult": "emaudit.judge.client",
    "RateLimiter": "emaudit.judge.client",
    "RequestFailed": "emaudit.judge.client",
    "RetryPolicy": "emaudit.judge.client",
    "ConfigError": "emaudit.judge.config",
    "DomainConfig": "emaudit.judge.config",
    "EndpointConfig": "emaudit.judge.config",
    "Experiment": "emaudit.judge.config",
    "ExperimentConfig": "emaudit.judge.config",
    "GenerationConfig": "emaudit.judge.config",
    "JudgeConfig": "emaudit.judge.config",
    "QuestionsConfig": "emaudit.judge.config",
    "RetryConfig": "emaudit.judge.config",
    "load_config": "emaudit.judge.config",
    "load_experiment": "emaudit.judge.config",
    "prepare_experiment": "emaudit.judge.config",
    "DATASETS": "emaudit.judge.datasets",
    "Example": "emaudit.judge.datasets",
    "PublicDataset": "emaudit.judge.datasets",
    "fetch_dataset": "emaudit.judge.datasets",
    "load_examples": "emaudit.judge.datasets",
    "DEFAULT_JUDGE_PROMPTS": "emaudit.judge.judging",
    "JudgeSpec": "emaudit.judge.judging",
    "JudgeSummary": "emaudit.judge.judging",
    "fill_judge_prompt": "emaudit.judge.judging",
    "judge_spec": "emaudit.judge.judging",
    "prompt_hash": "emaudit.judge.judging",
    "run_judging": "emaudit.judge.judging",
    "run_judging_async": "emaudit.judge.judging",
    "Cell": "emaudit.judge.pipeline",
    "GenerationSummary": "emaudit.judge.pipeline",
    "PromptPlan": "emaudit.judge.pipeline",
    "expand_cells": "emaudit.judge.pipeline",
    "plan_prompts": "emaudit.judge.pipeline",
    "run_generation": "emaudit.judge.pipeline",
    "run_generation_async": "emaudit.judge.pipeline",
    "INSTRUCTIONS": "emaudit.judge.prompts",
    "PROMPT_FORMATS": "emaudit.judge.prompts",
    "build_messages": "emaudit.judge.prompts",
    "sample_examples": "emaudit.judge.prompts",
    "MIN_NUMBER_MASS": "emaudit.judge.scoring",
    "Special": "emaudit.judge.scoring",
    "Verdict": "emaudit.judge.scoring",
    "integer_token": "emaudit.judge.scoring",
    "parse_sampled_answer": "emaudit.judge.scoring",
    "score_from_top_logprobs": "emaudit.judge.scoring",
}


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'emaudit.judge' has no attribute {name!r}")


__all__ = [
    "BATCH_ENDPOINT",
    "DATASETS",
    "DEFAULT_JUDGE_PROMPTS",
    "INSTRUCTIONS",
    "MIN_NUMBER_MASS",
    "PROMPT_FORMATS",
    "BatchJudgeSummary",
    "Cell",
    "ChatClient",
    "ChatResult",
    "ConfigError",
    "DomainConfig",
    "EndpointConfig",
    "Example",
    "Experiment",
    "ExperimentConfig",
    "GenerationConfig",
    "GenerationSummary",
    "JudgeConfig",
    "JudgeInventoryRow",
    "JudgeSpec",
    "JudgeSummary",
    "JudgeUnavailable",
    "ProbeResult",
    "PromptPlan",
    "PublicDataset",
    "QuestionsConfig",
    "RateLimiter",
    "RequestFailed",
    "RetryConfig",
    "RetryPolicy",
    "Special",
    "Verdict",
    "batch_state_path",
    "build_messages",
    "expand_cells",
    "fetch_dataset",
    "fill_judge_prompt",
    "integer_token",
    "judge_inventory",
    "judge_spec",
    "load_config",
    "load_examples",
    "load_experiment",
    "load_rubric",
    "parse_sampled_answer",
    "plan_prompts",
    "prepare_experiment",
    "probe_endpoint",
    "probe_judge",
    "prompt_hash",
    "request_hash",
    "run_generation",
    "run_generation_async",
    "run_judging",
    "run_judging_async",
    "run_judging_batch",
    "run_judging_batch_async",
    "sample_examples",
    "score_from_samples",
    "score_from_top_logprobs",
    "study_comparison",
    "study_judges",
]
