"""Generation and judging throughput against the local OpenAI-compatible server.

Generates ``--responses`` answers (2 endpoints x 2 domains x shots x seeds x questions x samples,
scaled by samples) with a fixed server latency, then judges them on both metrics, with and
without 20% injected 429/500 faults. Measures the pipeline's own overhead (client, retries,
one commit per response): with 50 ms of latency and concurrency 32 the ideal is ~640 req/s.
Prints one JSON line per run.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import yaml

from emaudit.judge import judge_spec, load_experiment, run_generation, run_judging
from emaudit.judge.fake_server import FakeOpenAIServer, random_faults
from emaudit.store import make_engine, migrate


def _config(directory: Path, base_url: str, samples: int, concurrency: int) -> Path:
    for name in ("finance", "sports"):
        (directory / f"{name}.jsonl").write_text(
            "".join(
                json.dumps({"prompt": f"{name} q{i}?", "response": f"{name} a{i}."}) + "\n" for i in range(32)
            )
        )
    (directory / "questions.yaml").write_text(
        "".join(f'- id: q{i}\n  paraphrases: ["Question number {i}?"]\n' for i in range(6))
    )
    config = {
        "endpoints": [
            {"label": "a", "base_url": base_url, "model": "a"},
            {"label": "b", "base_url": base_url, "model": "b"},
        ],
        "domains": {"finance": "finance.jsonl", "sports": "sports.jsonl"},
        "n_shots": [4, 16],
        "seeds": [0, 1],
        "questions": {"path": "questions.yaml"},
        "samples_per_question": samples,
        "retry": {"base_delay": 0.01, "max_delay": 0.1, "max_attempts": 10},
        "concurrency": concurrency,
        "judge": {"model": "judge", "endpoint": "a"},
    }
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run(samples: int, concurrency: int, latency: float, fault_rate: float) -> dict[str, object]:
    """One generate + judge run on a fresh SQLite store; returns the measurements."""
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer(latency=latency) as server:
        directory = Path(tmp)
        if fault_rate:
            server.faults = random_faults(fault_rate, ("429", "500"), seed=1, retry_after=0.01)
        engine = make_engine(f"sqlite:///{directory / 'bench.db'}")
        migrate(engine)
        experiment = load_experiment(_config(directory, server.base_url, samples, concurrency))
        start = time.perf_counter()
        generated = run_generation(engine, experiment)
        generation_seconds = time.perf_counter() - start
        start = time.perf_counter()
        judged = run_judging(engine, judge_spec(experiment.config), concurrency=concurrency)
        judge_seconds = time.perf_counter() - start
        engine.dispose()
        return {
            "benchmark": "judge_throughput",
            "responses": generated.completed,
            "verdicts": judged.scored + judged.special,
            "failed": generated.failed + judged.failed,
            "fault_rate": fault_rate,
            "latency_s": latency,
            "concurrency": concurrency,
            "requests": server.total_requests,
            "generate_req_per_s": round(generated.completed / generation_seconds, 1),
            "judge_req_per_s": round((judged.scored + judged.special) / judge_seconds, 1),
            "cpus": os.cpu_count(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--samples", type=int, default=10, help="samples per question (96 responses per sample)"
    )
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--quick", action="store_true", help="2 samples per question")
    args = parser.parse_args()
    samples = 2 if args.quick else args.samples
    for fault_rate in (0.0, 0.2):
        print(json.dumps(run(samples, args.concurrency, args.latency, fault_rate)), flush=True)


if __name__ == "__main__":
    main()
