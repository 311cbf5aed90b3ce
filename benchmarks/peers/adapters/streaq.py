"""streaq: Redis streams, named priorities (lowest first in the list), pipelined bulk enqueue."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import harness
from streaq import Worker

from adapters import _record

SETTINGS = ("`streaq run adapters.streaq:worker --workers 2` (concurrency 16, prefetch = "
            "concurrency: defaults); priorities [low, high]; bulk via worker.enqueue_many")

worker = Worker(redis_url=_record.url(), queue_name="bench", priorities=["low", "high"])


@worker.task()
async def noop(number: int, ref: float) -> None:
    _record.append(number, ref)


def worker_commands(url: str, record: object, workload: str) -> list[harness.Command]:
    return [harness.Command([harness.bin_path("streaq"), "run", "adapters.streaq:worker",
                             "--workers", "2"])]


class Producer(harness.AsyncProducer):
    bulk = True

    async def open(self) -> None:
        # streaq's client context must be entered and left by the same task (anyio cancel
        # scopes), while the harness calls each method as its own task: one task holds it.
        self.ready, self.done = asyncio.Event(), asyncio.Event()
        self.holder = asyncio.create_task(self._hold())
        await self.ready.wait()

    async def _hold(self) -> None:
        async with worker:
            self.ready.set()
            await self.done.wait()

    async def enqueue(self, number: int, ref: float, priority: str | None = None) -> None:
        await noop.enqueue(number, ref).start(priority=priority)

    async def enqueue_many(self, items: Sequence[tuple[int, float]], priority: str | None = None
                           ) -> None:
        await worker.enqueue_many(
            [noop.enqueue(number, ref).start(priority=priority) for number, ref in items])

    async def enqueue_at(self, number: int, due: float) -> None:
        await noop.enqueue(number, due).start(schedule=datetime.fromtimestamp(due, UTC))

    async def close(self) -> None:
        self.done.set()
        await self.holder
