"""Group commit: results are written many per transaction, and a worker waits for its commit.

Committing each answer synchronously on the event loop cost several ms of client CPU per
request (issue 11 measured 1.6x a bare ``AsyncOpenAI`` loop) and stalled every request in
flight while the database worked. Workers now hand their result to a :class:`BatchWriter` and
wait until it is committed; one writer task takes whatever has arrived and commits it in one
transaction. It never waits to fill a batch: while one commit runs, the next results queue up
and go together in the next one. A worker takes its next request only after its result is
committed, so a kill still loses at most the requests in flight (one per worker), and a resumed
run re-requests exactly those.

Where the commit runs depends on the store. PostgreSQL commits wait on the network and the
server's WAL flush, so they run in a worker thread (``in_thread=True``) and the loop goes on
meanwhile. A SQLite commit is local work (WAL with ``synchronous=NORMAL``: no fsync at
commit, about 0.1 ms of CPU per verdict), so it runs on the loop (``in_thread=False``): handing
it to a thread cost more than the write itself, because the thread must win the GIL from a
busy event loop at each hand-off (Python's switch interval is 5 ms). Issue 11 measured a
median wait for the commit of 21-93 ms per result that way (2 ms of it writing), time in which
the worker's connection sat idle: fewer requests in flight and more idle connections for the
HTTP pool to check on every request. On the loop the wait was 5-14 ms. (A SQLite write lock
held by another process, such as the rating app, blocks the loop for that wait, up to the
store's busy timeout; the app's transactions take milliseconds.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class BatchWriter(Generic[T]):
    """Collects items from many workers and writes them in batches in a thread.

    Args:
        write: Writes one batch in one transaction.
        in_thread: Run ``write`` in a worker thread (for a database across a network); False
            runs it on the event loop (SQLite; see the module docstring).
    """

    def __init__(self, write: Callable[[list[T]], None], *, in_thread: bool = True) -> None:
        self._write = write
        self._in_thread = in_thread
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
                items = [item for item, _ in batch]
                try:
                    if self._in_thread:
                        # the thread finishes its transaction even if this task is cancelled (Ctrl-C)
                        await asyncio.shield(asyncio.to_thread(self._write, items))
                    else:
                        self._write(items)  # no await inside: a cancellation cannot cut it short
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
