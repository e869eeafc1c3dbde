"""Speed of `emaudit report` on the reference data (29 files imported as README shows, 34 cells).

Imports ../shared/reference into a fresh SQLite store, draws a judge x model study (Neyman, 700
items), gives every item two simulated ratings, then times `emaudit report` (every format, 2,000
bootstrap resamples for agreement, as the CLI defaults). Target: under 30 s on 2 cores. Prints one
JSON line per run (with the load average) and a summary line. ``--reps`` repeats the timed report.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 30.0
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


def _emaudit(*args: object) -> None:
    from emaudit.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main([str(a) for a in args])
        except SystemExit as exit_:
            if exit_.code not in (0, None):
                raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.report.test_report_reference import _rate_every_item

    files = sorted(args.reference.rglob("*.csv"))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'ref.db'}"
        _emaudit("--db", url, "init")
        _emaudit("--db", url, "responses", "import", "--add-questions", *files)
        _emaudit("--db", url, "study", "create", "ref", "--strata", "judge_label,model",
                 "--allocation", "neyman", "--total", "700", "--seed", "3")  # fmt: skip
        _rate_every_item(url, "ref")
        times = []
        for rep in range(args.reps):
            started, cpu = time.perf_counter(), time.process_time()
            _emaudit("--db", url, "report", "--study", "ref", "--out", Path(tmp) / f"report{rep}")
            times.append(time.perf_counter() - started)
            # CPU seconds tell a slow run from a busy host (wall time grows with the load average).
            cpu_seconds = round(time.process_time() - cpu, 2)
            print(json.dumps({"benchmark": "report_speed", "rep": rep, "files": len(files),
                              "seconds": round(times[-1], 2), "cpu_seconds": cpu_seconds,
                              "loadavg": os.getloadavg()}))  # fmt: skip
    print(json.dumps({"benchmark": "report_speed", "summary": True, "max_seconds": round(max(times), 2),
                      "target_seconds": TARGET_SECONDS, "ok": max(times) < TARGET_SECONDS}))  # fmt: skip


if __name__ == "__main__":
    main()
