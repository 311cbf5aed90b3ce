"""arq: one queue, no priorities, no bulk enqueue; workers poll every ``poll_delay`` (0.5 s)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import harness
from arq import create_pool
from arq.connections import RedisSettings

from adapters import _record

SETTINGS = "2 x `arq adapters.arq.WorkerSettings` (max_jobs=10, poll_delay=0.5 s: defaults)"


async def noop(ctx: dict[str, Any], number: int, ref: float) -> None:
    _record.append(number, ref)


class WorkerSettings:
    functions = [noop]
    redis_settings = RedisSettings.from_dsn(_record.url())


def worker_commands(url: str, record: object, workload: str) -> list[harness.Command]:
    return [harness.Command([harness.bin_path("arq"), "adapters.arq.WorkerSettings"])
            for _ in range(2)]


class Producer(harness.AsyncProducer):
    priorities = False

    async def open(self) -> None:
        self.pool = await create_pool(RedisSettings.from_dsn(_record.url()))

    async def enqueue(self, number: int, ref: float, priority: str | None = None) -> None:
        await self.pool.enqueue_job("noop", number, ref)

    async def enqueue_at(self, number: int, due: float) -> None:
        await self.pool.enqueue_job("noop", number, due,
                                    _defer_until=datetime.fromtimestamp(due, UTC))

    async def close(self) -> None:
        await self.pool.aclose()
