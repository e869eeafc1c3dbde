"""What every CLI command shares: the consoles, the database the user chose, progress bars."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import Engine

from emaudit.store import open_store

# Piped output (logs, CI, `| less`) keeps wide tables whole instead of folding them to 80 columns.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class _CliState:
    database_url: str | None = None


state = _CliState()


def cli_engine(*, upgrade: bool = False) -> Engine:
    """The engine for the database given by ``--db`` or ``EMAUDIT_DATABASE_URL``."""
    return open_store(state.database_url, upgrade=upgrade)


def progress_bar(*, transient: bool = True) -> Progress:
    """A rich progress bar with count, rate-friendly columns and ETA, written to stderr."""
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
