"""SAQ on Redis: no priorities there (Postgres only), no bulk enqueue (``map`` waits for
results), and ``scheduled`` takes whole epoch seconds, so due times are rounded up."""

from __future__ import annotations

import math
from typing import Any

import harness
from saq import Queue

from adapters import _record

SETTINGS = "`saq adapters.saq.settings --workers 2` (concurrency 10 per process, the default)"

queue = Queue.from_url(_record.url(), name="bench")


async def noop(ctx: dict[str, Any], *, number: int, ref: float) -> None:
    _record.append(number, ref)


settings = {"queue": queue, "functions": [noop], "concurrency": 10}


def worker_commands(url: str, record: object, workload: str) -> list[harness.Command]:
    return [harness.Command([harness.bin_path("saq"), "adapters.saq.settings", "--workers", "2",
                             "--quiet"])]


class Producer(harness.AsyncProducer):
    priorities = False

    async def open(self) -> None:
        await queue.connect()

    async def enqueue(self, number: int, ref: float, priority: str | None = None) -> None:
        await queue.enqueue("noop", number=number, ref=ref)

    async def enqueue_at(self, number: int, due: float) -> None:
        await queue.enqueue("noop", number=number, ref=due, scheduled=math.ceil(due))

    async def close(self) -> None:
        await queue.disconnect()
