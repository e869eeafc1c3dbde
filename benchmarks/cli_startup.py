"""CLI start-up: quick commands as whole processes, beside `python -c "import typer, rich"`.

Runs each command ``--reps`` times as a fresh process (interleaved, so a burst of load on the
shared host hits all of them alike) and prints one JSON line: per command the median CPU seconds
(user + system of the child, from ``os.wait4``: the least load-sensitive measure) and the median
wall seconds, each command's ratio to the baseline in the same run, the load average before and
after, and whether the target is met: ``emaudit --help`` and ``emaudit plan ...`` at most 1.5x the
baseline's CPU time (issue 14). ``emaudit rates`` on an empty store is reported beside them; it
opens the store (SQLAlchemy, alembic), which the baseline does not. ``floor_with_numpy`` (typer,
rich and numpy imported, nothing run) is the least ``plan`` can cost while its planner uses numpy.

    python benchmarks/cli_startup.py            # 15 runs of each
    python benchmarks/cli_startup.py --quick    # 5 runs of each
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 1.5


def _emaudit() -> str:
    script = Path(sys.executable).with_name("emaudit")
    found = str(script) if script.exists() else shutil.which("emaudit")
    if found is None:
        raise SystemExit("the emaudit console script is not installed next to this Python")
    return found


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one whole process."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    stderr = process.stderr.read() if process.stderr else b""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{argv} exited {process.returncode}: {stderr.decode(errors='replace')}")
    return usage.ru_utime + usage.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="5 runs of each command")
    args = parser.parse_args()
    reps = 5 if args.quick else args.reps
    emaudit = _emaudit()
    with tempfile.TemporaryDirectory() as tmp:
        env = os.environ | {"EMAUDIT_DATABASE_URL": f"sqlite:///{Path(tmp) / 'empty.db'}"}
        subprocess.run([emaudit, "init"], env=env, check=True, capture_output=True)
        commands = {
            "baseline": [sys.executable, "-c", "import typer, rich"],
            # The floor for `plan`, whose planner is vectorised numpy: typer, rich and numpy alone.
            "floor_with_numpy": [sys.executable, "-c", "import typer, rich, numpy"],
            "help": [emaudit, "--help"],
            "plan": [emaudit, "plan", "-r", "0.05", "-r", "0.12", "--ppv", "0.8", "--npv", "0.99"],
            "rates_empty_store": [emaudit, "rates"],
        }
        load_before = os.getloadavg()
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for argv in commands.values():  # one warm-up each: the first run pays the disk cache
            _run(argv, env)
        for _ in range(reps):
            for name, argv in commands.items():
                samples[name].append(_run(argv, env))
        load_after = os.getloadavg()
    cpu = {name: statistics.median(s[0] for s in runs) for name, runs in samples.items()}
    wall = {name: statistics.median(s[1] for s in runs) for name, runs in samples.items()}
    ratios = {name: round(cpu[name] / cpu["baseline"], 2) for name in commands if name != "baseline"}
    wall_ratios = {name: round(wall[name] / wall["baseline"], 2) for name in commands if name != "baseline"}
    result = {
        "benchmark": "cli_startup",
        "reps": reps,
        "median_cpu_seconds": {name: round(value, 4) for name, value in cpu.items()},
        "median_wall_seconds": {name: round(value, 4) for name, value in wall.items()},
        "cpu_ratio_to_baseline": ratios,
        "wall_ratio_to_baseline": wall_ratios,
        "target": f"help and plan <= {TARGET_RATIO}x baseline CPU",
        "target_met": ratios["help"] <= TARGET_RATIO and ratios["plan"] <= TARGET_RATIO,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
