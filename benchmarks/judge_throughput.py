"""Client CPU per judge request: emaudit against a bare AsyncOpenAI + semaphore loop, same run.

The local OpenAI-compatible server runs in its own process (so its CPU is not counted) with a
fixed latency. The answers are generated once; then, alternating, the bare loop sends the very
same judge requests (one token, top-20 logprobs, the same client settings: no retries, the same
timeout and connection limits) and keeps the top logprobs in memory, and ``emaudit`` judges them
as ``emaudit judge`` does at a terminal: reading the work list, the probe, scoring, provenance,
group commits to SQLite and the progress bar (drawn as on an 80-column terminal, into
/dev/null). Client CPU is ``time.process_time()`` of this process (every thread) over each
phase, divided by the requests sent (emaudit's include the probe), so emaudit's fixed costs are
spread over the run's requests; ``emaudit_noop_run_cpu_ms`` shows them on their own (a run that
finds everything judged). Before each phase the garbage collector is emptied, and the objects of
the setup are frozen once (``gc.freeze``), so a full collection of the setup's heap (about
120 ms, 0.3 ms per request in ``--quick``) does not land in whichever phase happens to be
running: both loops then pay only for the objects they make. CPU per request is steadier on a
loaded machine than requests/s; both are printed. Target (issue 11): emaudit / bare <= 1.2. Two
more lines repeat the old end-to-end measurement (generate + judge requests/s, with and without
20% injected 429/500 faults).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from emaudit.judge import judge_spec, load_experiment, run_generation, run_judging
from emaudit.judge.fake_server import FakeOpenAIServer, random_faults
from emaudit.judge.judging import LOGPROB_PARAMS, _pending
from emaudit.store import make_engine, migrate


def _serve(latency: float, fault_rate: float, ports: Any, stop: Any) -> None:
    server = FakeOpenAIServer(latency=latency)
    if fault_rate:
        server.faults = random_faults(fault_rate, ("429", "500"), seed=1, retry_after=0.01)
    server.start()
    ports.put(server.port)
    stop.wait()
    server.stop()


class _ServerProcess:
    """The fake server in a child process (its CPU stays out of the client's measurement)."""

    def __init__(self, latency: float, fault_rate: float = 0.0) -> None:
        context = multiprocessing.get_context("spawn")
        self._ports = context.Queue()
        self._stop = context.Event()
        self._process = context.Process(target=_serve, args=(latency, fault_rate, self._ports, self._stop))

    def __enter__(self) -> str:
        self._process.start()
        return f"http://127.0.0.1:{self._ports.get(timeout=60)}/v1"

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._process.join(timeout=10)


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
        "questions": "questions.yaml",
        "samples_per_question": samples,
        "retry": {"base_delay": 0.01, "max_delay": 0.1, "max_attempts": 10},
        "concurrency": concurrency,
        "judge": {"model": "judge", "endpoint": "a", "mode": "logprobs"},
    }
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def _bare_loop(base_url: str, prompts: list[str], concurrency: int, timeout: float) -> int:
    """What a researcher would write: AsyncOpenAI, a semaphore, keep the top logprobs."""
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="no-key", max_retries=0, timeout=timeout)
    semaphore = asyncio.Semaphore(concurrency)
    kept: list[dict[str, float]] = []

    async def one(prompt: str) -> None:
        async with semaphore:
            completion = await client.chat.completions.create(
                model="judge", messages=[{"role": "user", "content": prompt}], **LOGPROB_PARAMS
            )
            content = completion.choices[0].logprobs.content  # type: ignore[union-attr]
            kept.append({t.token: t.logprob for t in content[0].top_logprobs})  # type: ignore[index]

    await asyncio.gather(*(one(prompt) for prompt in prompts))
    await client.close()
    return len(kept)


def _cpu(function: Any) -> tuple[float, float, Any]:
    gc.collect()  # start every phase with empty young generations (see the module docstring)
    cpu, wall = time.process_time(), time.perf_counter()
    result = function()
    return time.process_time() - cpu, time.perf_counter() - wall, result


def _terminal_progress() -> None:
    """Draw emaudit's progress bar as on an 80-column terminal, into /dev/null (``emaudit judge``
    at a terminal draws it; this process's stderr may not be one)."""
    from rich.console import Console

    from emaudit.console import err_console

    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    err_console._console = Console(file=sink, force_terminal=True, width=80)  # type: ignore[attr-defined]


def cpu_per_request(samples: int, concurrency: int, latency: float, rounds: int) -> dict[str, object]:
    """Median client CPU ms per judge request over ``rounds`` alternating runs."""
    _terminal_progress()
    with tempfile.TemporaryDirectory() as tmp, _ServerProcess(latency) as base_url:
        directory = Path(tmp)
        engine = make_engine(f"sqlite:///{directory / 'bench.db'}")
        migrate(engine)
        experiment = load_experiment(_config(directory, base_url, samples, concurrency))
        responses = run_generation(engine, experiment).completed
        spec = judge_spec(experiment.config)
        timeout = spec.retry.timeout  # the bare loop's client is configured as emaudit's
        prompts = [job.prompt for job in _pending(engine, spec, response_ids=None, retry_errors=False)[0]]
        gc.collect()
        gc.freeze()
        bare_ms: list[float] = []
        ours_ms: list[float] = []
        bare_rps: list[float] = []
        ours_rps: list[float] = []
        for round_ in range(rounds):
            cpu, wall, sent = _cpu(lambda: asyncio.run(_bare_loop(base_url, prompts, concurrency, timeout)))
            bare_ms.append(1000 * cpu / sent)
            bare_rps.append(sent / wall)
            labelled = judge_spec(experiment.config, label=f"bench-{round_}")
            cpu, wall, summary = _cpu(
                lambda spec=labelled: run_judging(engine, spec, concurrency=concurrency, progress=True)
            )
            requests = summary.scored + summary.special + summary.failed + 1  # + the probe
            ours_ms.append(1000 * cpu / requests)
            ours_rps.append(requests / wall)
        done = judge_spec(experiment.config, label="bench-0")
        noop_cpu, _, _ = _cpu(lambda: run_judging(engine, done, concurrency=concurrency, progress=True))
        engine.dispose()
        gc.unfreeze()
    bare, ours = statistics.median(bare_ms), statistics.median(ours_ms)
    ratios = [o / b for o, b in zip(ours_ms, bare_ms, strict=True)]
    return {
        "benchmark": "judge_throughput_cpu",
        "responses": responses,
        "requests_per_run": len(prompts),
        "rounds": rounds,
        "concurrency": concurrency,
        "latency_s": latency,
        "bare_cpu_ms_per_request": round(bare, 3),
        "emaudit_cpu_ms_per_request": round(ours, 3),
        "cpu_ratio": round(ours / bare, 3),
        "round_ratios": [round(ratio, 3) for ratio in ratios],
        "target_cpu_ratio": 1.2,
        "emaudit_noop_run_cpu_ms": round(1000 * noop_cpu, 1),
        "bare_req_per_s": round(statistics.median(bare_rps), 1),
        "emaudit_req_per_s": round(statistics.median(ours_rps), 1),
        "req_per_s_ratio": round(statistics.median(ours_rps) / statistics.median(bare_rps), 3),
        "load_average": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }


def end_to_end(samples: int, concurrency: int, latency: float, fault_rate: float) -> dict[str, object]:
    """One generate + judge run on a fresh SQLite store (the measurement this benchmark began with)."""
    with tempfile.TemporaryDirectory() as tmp, _ServerProcess(latency, fault_rate) as base_url:
        directory = Path(tmp)
        engine = make_engine(f"sqlite:///{directory / 'bench.db'}")
        migrate(engine)
        experiment = load_experiment(_config(directory, base_url, samples, concurrency))
        _, generation_seconds, generated = _cpu(lambda: run_generation(engine, experiment))
        _, judge_seconds, judged = _cpu(
            lambda: run_judging(engine, judge_spec(experiment.config), concurrency=concurrency)
        )
        engine.dispose()
        return {
            "benchmark": "judge_throughput",
            "responses": generated.completed,
            "verdicts": judged.scored + judged.special,
            "failed": generated.failed + judged.failed,
            "fault_rate": fault_rate,
            "latency_s": latency,
            "concurrency": concurrency,
            "generate_req_per_s": round(generated.completed / generation_seconds, 1),
            "judge_req_per_s": round((judged.scored + judged.special) / judge_seconds, 1),
            "load_average": round(os.getloadavg()[0], 2),
            "cpus": os.cpu_count(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=10, help="samples per question (96 responses each)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 samples per question, 3 rounds")
    args = parser.parse_args()
    samples = 2 if args.quick else args.samples
    rounds = 3 if args.quick else args.rounds
    print(json.dumps(cpu_per_request(samples, args.concurrency, args.latency, rounds)), flush=True)
    for fault_rate in (0.0, 0.2):
        print(json.dumps(end_to_end(samples, args.concurrency, args.latency, fault_rate)), flush=True)


if __name__ == "__main__":
    main()
