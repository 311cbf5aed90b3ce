"""PgQueuer: one multi-row enqueue for a batch, LISTEN/NOTIFY wake-ups, priority DESC order.

The payload is bytes, so the task number and reference time travel as 12 packed bytes.
"""

from __future__ import annotations

import struct
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
import harness
from pgqueuer import AsyncpgDriver, PgQueuer, Queries
from pgqueuer.models import Job

from adapters import _record

SETTINGS = ("2 x `pgq run adapters.pgqueuer:main` (batch size 10, unlimited concurrency: "
            "defaults); asyncpg driver; bulk via Queries.enqueue with lists")
PAYLOAD = struct.Struct("<Id")
PRIORITY = {None: 0, "low": 0, "high": 9}


@asynccontextmanager
async def main() -> AsyncIterator[PgQueuer]:
    """The factory ``pgq run`` enters in each worker process."""
    connection = await asyncpg.connect(_record.url())
    pgq = PgQueuer(AsyncpgDriver(connection))

    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        _record.append(*PAYLOAD.unpack(job.payload or b""))

    try:
        yield pgq
    finally:
        await connection.close()


def prepare(url: str) -> None:
    """Install PgQueuer's schema in the fresh database."""
    subprocess.run([harness.bin_path("pgq"), "--pg-dsn", url, "install"], check=True,
                   capture_output=True, timeout=120)


def worker_commands(url: str, record: object, workload: str) -> list[harness.Command]:
    return [harness.Command([harness.bin_path("pgq"), "--pg-dsn", url, "run",
                             "adapters.pgqueuer:main"])
            for _ in range(2)]


class Producer(harness.AsyncProducer):
    bulk = True

    async def open(self) -> None:
        self.connection = await asyncpg.connect(_record.url())
        self.queries = Queries(AsyncpgDriver(self.connection))

    async def enqueue(self, number: int, ref: float, priority: str | None = None) -> None:
        await self.queries.enqueue("noop", PAYLOAD.pack(number, ref), PRIORITY[priority])

    async def enqueue_many(self, items: Sequence[tuple[int, float]], priority: str | None = None
                           ) -> None:
        await self.queries.enqueue(["noop"] * len(items),
                                   [PAYLOAD.pack(number, ref) for number, ref in items],
                                   [PRIORITY[priority]] * len(items))

    async def enqueue_at(self, number: int, due: float) -> None:
        await self.queries.enqueue("noop", PAYLOAD.pack(number, due), 0,
                                   execute_after=timedelta(seconds=max(0.0, due - time.time())))

    async def close(self) -> None:
        await self.connection.close()
