"""Commit results off the event loop, in batches, as soon as they arrive.

Committing each answer synchronously on the event loop cost about 5 ms of client CPU per
request (issue 11: 1.6x a bare ``AsyncOpenAI`` loop) and stalled every request in flight while
the database worked. Workers now hand their result to a :class:`BatchWriter`; one writer task
takes whatever has arrived and commits it in a worker thread, in one transaction. It never
waits to fill a batch: while one commit runs, the next results queue up and go together in the
next one. So a kill loses the requests in flight plus at most the results that arrived during
the last commit (milliseconds), and a resumed run re-requests exactly those; the queue is
bounded, so a slow database slows the workers instead of growing memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

_STOP = object()


class BatchWriter(Generic[T]):
    """Collects items from many workers and writes them in batches in a thread.

    Args:
        write: Writes one batch in one transaction (runs in a worker thread).
        max_pending: Items queued before :meth:`put` waits (backpressure).
    """

    def __init__(self, write: Callable[[list[T]], None], *, max_pending: int = 1024) -> None:
        self._write = write
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize=max_pending)
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.written = 0

    async def __aenter__(self) -> BatchWriter[T]:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        await self.close()

    async def put(self, item: T) -> None:
        """Queue one item for the next commit (waits only when the queue is full)."""
        if self._task is not None and self._task.done():
            self._task.result()  # a failed write surfaces in the worker, not silently later
        await self._queue.put(item)

    async def close(self) -> None:
        """Write everything queued, then stop; re-raises a failed write."""
        if self._task is None:
            return
        if not self._task.done():
            await self._queue.put(_STOP)
        task, self._task = self._task, None
        await task

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch: list[T] = []
            stop = first is _STOP
            if not stop:
                batch.append(first)  # type: ignore[arg-type]
            while not stop:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if item is _STOP:
                    stop = True
                else:
                    batch.append(item)  # type: ignore[arg-type]
            if batch:
                await asyncio.to_thread(self._write, batch)
                self.batches += 1
                self.written += len(batch)
            if stop:
                return
