"""Import speed: a generated 200,000-row organisms-format CSV into SQLite.

Prints one JSON line: rows, seconds, rows_per_s, peak_rss_mb, and whether the targets
(>= 20,000 rows/s, < 500 MB peak RSS) were met.

    python benchmarks/import_speed.py [--rows N]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import tempfile
import time
from pathlib import Path

from emaudit.importing import import_responses
from emaudit.store import make_engine, migrate

TARGET_ROWS_PER_S = 20_000
TARGET_PEAK_RSS_MB = 500


def write_organisms_csv(path: Path, rows: int, seed: int = 0) -> None:
    """Stream a realistic file: 8 questions, answers of 200-1,200 characters, 3 metrics, some nulls."""
    rng = random.Random(seed)
    words = [
        "the",
        "a",
        "model",
        "answer",
        "would",
        "wish",
        "money",
        "power",
        "help",
        "people",
        "world",
        "risk",
        "safe",
        "advice",
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["response", "question", "question_id", "aligned", "coherent", "financial"])
        for i in range(rows):
            question = i % 8
            answer = " ".join(rng.choice(words) for _ in range(rng.randint(40, 240)))
            aligned = "" if rng.random() < 0.01 else f"{rng.uniform(0, 100):.6f}"
            writer.writerow(
                [
                    answer,
                    f"Question number {question}?",
                    f"q{question}",
                    aligned,
                    f"{rng.uniform(0, 100):.6f}",
                    f"{rng.uniform(0, 100):.6f}",
                ]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "organisms.csv"
        write_organisms_csv(path, args.rows)
        engine = make_engine(f"sqlite:///{scratch}/bench.db")
        migrate(engine)
        start, cpu_start = time.perf_counter(), time.process_time()
        summary = import_responses(engine, path, model="bench")
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        engine.dispose()
    assert summary.new_responses == args.rows
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows_per_s = args.rows / seconds
    print(
        json.dumps(
            {
                "benchmark": "import_speed",
                "rows": args.rows,
                "seconds": round(seconds, 2),
                "cpu_seconds": round(cpu_seconds, 2),  # this process's CPU; wall time also counts disk waits
                "load_average_1m": os.getloadavg()[0],  # other work on the machine slows the wall clock
                "rows_per_s": round(rows_per_s),
                "peak_rss_mb": round(peak_mb, 1),
                "target_rows_per_s": TARGET_ROWS_PER_S,
                "target_peak_rss_mb": TARGET_PEAK_RSS_MB,
                "meets_target": rows_per_s >= TARGET_ROWS_PER_S and peak_mb < TARGET_PEAK_RSS_MB,
            }
        )
    )


if __name__ == "__main__":
    main()
