"""Group commit: results are written off the event loop, many per transaction.

Committing each answer synchronously on the event loop cost several ms of client CPU per
request (issue 11 measured 1.6x a bare ``AsyncOpenAI`` loop) and stalled every request in
flight while the database worked. Workers now hand their result to a :class:`BatchWriter` and
wait until it is committed; one writer task takes whatever has arrived and commits it in a
worker thread, in one transaction. It never waits to fill a batch: while one commit runs, the
next results queue up and go together in the next one. A worker takes its next request only
after its result is committed, so a kill still loses at most the requests in flight (one per
worker), and a resumed run re-requests exactly those.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class BatchWriter(Generic[T]):
    """Collects items from many workers and writes them in batches in a thread.

    Args:
        write: Writes one batch in one transaction (runs in a worker thread).
    """

    def __init__(self, write: Callable[[list[T]], None]) -> None:
        self._write = write
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[None]] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.written = 0

    async def __aenter__(self) -> BatchWriter[T]:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        await self.close()

    async def put(self, item: T) -> None:
        """Queue ``item`` for the next commit and return once it is committed.

        Raises:
            Exception: whatever the write raised (the item is then not stored).
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, done))
        await done

    async def close(self) -> None:
        """Write everything queued, then stop."""
        if self._task is None:
            return
        task, self._task = self._task, None
        if not task.done():
            await self._queue.put(None)
        await task

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            stop = first is None
            batch: list[tuple[T, asyncio.Future[None]]] = [] if first is None else [first]
            while not stop:
                try:
                    entry = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if entry is None:
                    stop = True
                else:
                    batch.append(entry)
            if batch:
                try:
                    # the thread finishes its transaction even if this task is cancelled (Ctrl-C)
                    await asyncio.shield(asyncio.to_thread(self._write, [item for item, _ in batch]))
                except BaseException as error:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(
                                error if isinstance(error, Exception) else RuntimeError(str(error))
                            )
                    if not isinstance(error, Exception):
                        raise
                else:
                    self.batches += 1
                    self.written += len(batch)
                    for _, done in batch:
                        if not done.done():
                            done.set_result(None)
            if stop:
                return
