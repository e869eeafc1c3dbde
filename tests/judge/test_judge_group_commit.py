"""The group-commit writer: many results per transaction, and no worker goes on before its commit."""

from __future__ import annotations

import asyncio
import threading

import pytest

from emaudit.judge._writer import BatchWriter


@pytest.mark.parametrize("in_thread", [True, False], ids=["thread (PostgreSQL)", "loop (SQLite)"])
def test_results_are_committed_in_groups_and_each_put_returns_after_its_commit(in_thread: bool) -> None:
    committed: list[int] = []
    gate = threading.Event()

    def write(items: list[int]) -> None:
        if in_thread:  # the first commit is slow, so the others queue up behind it
            gate.wait(5)  # (on the loop a blocking write holds the loop: the workers queue anyway)
        committed.extend(items)

    async def main() -> tuple[int, list[bool]]:
        seen_after_put: list[bool] = []
        async with BatchWriter(write, in_thread=in_thread) as writer:

            async def worker(i: int) -> None:
                await writer.put(i)
                seen_after_put.append(i in committed)  # a kill after this point loses nothing

            tasks = [asyncio.create_task(worker(i)) for i in range(50)]
            await asyncio.sleep(0.05)
            gate.set()
            await asyncio.gather(*tasks)
        return writer.batches, seen_after_put

    batches, seen_after_put = asyncio.run(main())
    assert sorted(committed) == list(range(50))
    assert all(seen_after_put) and len(seen_after_put) == 50
    # 50 results in far fewer transactions: the first alone, then what queued meanwhile.
    assert 1 <= batches <= 3


def test_a_failed_commit_reaches_every_worker_of_that_group_and_the_writer_goes_on() -> None:
    calls: list[list[int]] = []

    def write(items: list[int]) -> None:
        calls.append(items)
        if 0 in items:
            raise RuntimeError("disk full")

    async def main() -> list[str]:
        outcomes: list[str] = []
        async with BatchWriter(write, in_thread=True) as writer:
            try:
                await writer.put(0)
                outcomes.append("stored")
            except RuntimeError as error:
                outcomes.append(str(error))
            await writer.put(1)  # the next group still commits
            outcomes.append("stored")
        return outcomes

    assert asyncio.run(main()) == ["disk full", "stored"]
    assert calls == [[0], [1]]
