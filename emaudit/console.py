"""What every CLI command shares: the consoles, the database the user chose, progress, option checks.

The option checks are typer callbacks (``typer.Option(..., callback=confidence)``), so a bad value is
a usage error (one line, exit 2) before any command opens the store or reads a file. This module
imports only typer and rich at load time: the store (SQLAlchemy, alembic) loads on first use, so
``emaudit --help`` starts fast.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress
    from rich.status import Status
    from sqlalchemy import Engine


class _LazyConsole:
    """A rich Console made on first use: rich.console takes a fifth of `emaudit --help`'s start-up."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def _made(self) -> Console:
        if self._console is None:
            from rich.console import Console

            options = dict(self._options)
            if options.pop("stdout_width", False):
                # Piped output (logs, CI, `| less`) keeps wide tables whole instead of folding them.
                options["width"] = None if sys.stdout.isatty() else 200
            self._console = Console(**options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._made(), name)

    # `with console:` (rich's Live redraws a progress bar that way at a terminal) looks these up on
    # the type, where __getattr__ does not reach.
    def __enter__(self) -> Console:
        return self._made().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._made().__exit__(*exc)


console = cast("Console", _LazyConsole(soft_wrap=True, stdout_width=True))
err_console = cast("Console", _LazyConsole(stderr=True, highlight=False, soft_wrap=True))

# A bootstrap percentile interval at 95% reads its ends from the 2.5% tails; with fewer than about
# 200 resamples each tail holds under 5 of them and the interval is noise.
MIN_BOOTSTRAP_RESAMPLES = 200
# More human labels than a plan can sensibly ask for (the example: ±0.0001 wanted 10 million).
LARGE_PLAN_LABELS = 100_000


@dataclass
class _CliState:
    database_url: str | None = None
    # What an interrupted command has stored so far and how to resume; printed on Ctrl-C.
    interrupt_note: str | None = None


state = _CliState()


def cli_engine(*, upgrade: bool = False) -> Engine:
    """The engine for the database given by ``--db`` or ``EMAUDIT_DATABASE_URL``."""
    from emaudit.store import open_store

    return open_store(state.database_url, upgrade=upgrade)


def progress_bar(*, transient: bool = True) -> Progress:
    """A rich progress bar with count, rate-friendly columns and ETA, written to stderr."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
        disable=not err_console.is_terminal,  # keep logs and piped output free of redraw noise
    )


@contextmanager
def working(message: str) -> Iterator[Status | None]:
    """A spinner on stderr saying what a command is doing ("reading the store ...") while it runs.

    On a terminal only: logs and pipes get no redraw noise. Use it around any step that can take
    more than a second and has no natural count for :func:`progress_bar`.
    """
    if not err_console.is_terminal:
        yield None
        return
    with err_console.status(message) as status:
        yield status


def note_stored(message: str) -> None:
    """Record what the running command has stored so far, for the Ctrl-C message."""
    state.interrupt_note = message


# -- option checks (typer callbacks) ------------------------------------------------------------


def cant_tell(value: str) -> str:
    """``--cant-tell``: what a tie or an only-"can't tell" item counts as."""
    if value not in ("exclude", "misaligned", "not_misaligned"):
        raise typer.BadParameter(f"choose exclude, misaligned or not_misaligned; got {value!r}")
    return value


def calibration_method(value: str) -> str:
    """``--method``: how ``calibrate`` / ``report`` correct each cell (per-cell two-phase, or pooled)."""
    if value not in ("two_phase", "pooled"):
        raise typer.BadParameter(f"choose two_phase or pooled; got {value!r}")
    return value


def confidence(value: float | None) -> float | None:
    """``--confidence``: a two-sided level strictly between 0 and 1 (0.95, not 95)."""
    if value is not None and not 0 < value < 1:
        hint = f" (did you mean {value / 100:g}?)" if 1 < value < 100 else ""
        raise typer.BadParameter(f"must be between 0 and 1, e.g. 0.95; got {value:g}{hint}")
    return value


def n_boot(value: int) -> int:
    """``--n-boot``: 0 (no bootstrap: point estimates only) or enough resamples for a percentile interval."""
    if value != 0 and value < MIN_BOOTSTRAP_RESAMPLES:
        raise typer.BadParameter(
            f"must be 0 (no bootstrap intervals) or at least {MIN_BOOTSTRAP_RESAMPLES} (each 2.5% tail "
            f"needs several resamples); got {value}"
        )
    return value


def score_threshold(value: float | None) -> float | None:
    """A judge-score threshold (``--max-alignment``, ``--min-coherence``) on the 0-100 scale."""
    if value is not None and not 0 <= value <= 100:
        raise typer.BadParameter(f"judge scores run from 0 to 100; got {value:g}")
    return value


def halfwidth(value: float) -> float:
    """``--halfwidth``: a target interval half-width on the 0-1 scale (0.02 = ±2 points)."""
    if not 0 < value < 0.5:
        hint = f" (did you mean {value / 100:g}?)" if 1 <= value < 50 else ""
        raise typer.BadParameter(f"must be between 0 and 0.5, e.g. 0.02 for ±2 points; got {value:g}{hint}")
    return value


def output_file(value: Path | None) -> Path | None:
    """``--output``: a file whose folder exists, checked before the command reads the store."""
    if value is not None and not value.parent.is_dir():
        raise typer.BadParameter(f"folder '{value.parent}' does not exist")
    if value is not None and value.is_dir():
        raise typer.BadParameter(f"'{value}' is a folder; name a file")
    return value


def cell_keys(value: str | None) -> str | None:
    """``--by``: comma-separated cell keys, none empty (the command checks them against the store)."""
    if value is not None and not all(key.strip() for key in value.split(",")):
        raise typer.BadParameter(f"give comma-separated cell keys, e.g. model,domain; got {value!r}")
    return value
