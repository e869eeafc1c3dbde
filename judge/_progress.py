"""The progress bar of ``generate`` and ``judge``: count, rate, ETA, errors and tokens spent."""

from __future__ import annotations

from types import TracebackType

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from emaudit.console import err_console


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- req/s" if speed is None else f"{speed:.1f} req/s", style="progress.data.speed")


class RunProgress:
    """A rich progress bar on stderr; a no-op when ``enabled`` is False (tests, ``--quiet``)."""

    def __init__(self, description: str, total: int, *, enabled: bool = True) -> None:
        self.errors = 0
        self.retries = 0
        self.tokens = 0
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if enabled:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                _RateColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("errors {task.fields[errors]} · retries {task.fields[retries]}"),
                TextColumn("tokens {task.fields[tokens]:,}"),
                console=err_console,
                transient=False,
            )
            self._task = self._progress.add_task(description, total=total, errors=0, retries=0, tokens=0)

    def __enter__(self) -> RunProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, *, error: bool = False, tokens: int = 0) -> None:
        """Count one finished request."""
        self.errors += int(error)
        self.tokens += tokens
        self._update(advance=1)

    def retried(self, _reason: str = "") -> None:
        """Count one retried attempt."""
        self.retries += 1
        self._update(advance=0)

    def _update(self, advance: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task, advance=advance, errors=self.errors, retries=self.retries, tokens=self.tokens
            )
