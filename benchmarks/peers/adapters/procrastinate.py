"""procrastinate: jobs as rows, LISTEN/NOTIFY wake-ups, ``batch_defer`` for bulk, higher
``priority`` first."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime

import harness
from procrastinate import App, PsycopgConnector

from adapters import _record

CONCURRENCY = 10
SETTINGS = (f"2 x `procrastinate worker -q bench -c {CONCURRENCY}` (listen/notify on, "
            "default polling interval); bulk via batch_defer_async")
PRIORITY = {None: 0, "low": 0, "high": 9}

app = App(connector=PsycopgConnector(conninfo=_record.url()))


@app.task(name="noop", queue="bench")
async def noop(number: int, ref: float) -> None:
    _record.append(number, ref)


def prepare(url: str) -> None:
    """Apply procrastinate's schema to the fresh database."""
    subprocess.run([harness.bin_path("procrastinate"), "--app", "adapters.procrastinate.app",
                    "schema", "--apply"], check=True, capture_output=True, timeout=120)


def worker_commands(url: str, record: object, workload: str) -> list[harness.Command]:
    return [harness.Command([harness.bin_path("procrastinate"), "--app",
                             "adapters.procrastinate.app", "worker", "-q", "bench", "-c",
                             str(CONCURRENCY)]) for _ in range(2)]


class Producer(harness.AsyncProducer):
    bulk = True

    async def open(self) -> None:
        await app.open_async()

    async def enqueue(self, number: int, ref: float, priority: str | None = None) -> None:
        await noop.configure(priority=PRIORITY[priority]).defer_async(number=number, ref=ref)

    async def enqueue_many(self, items: Sequence[tuple[int, float]], priority: str | None = None
                           ) -> None:
        await noop.configure(priority=PRIORITY[priority]).batch_defer_async(
            *[{"number": number, "ref": ref} for number, ref in items])

    async def enqueue_at(self, number: int, due: float) -> None:
        await noop.configure(schedule_at=datetime.fromtimestamp(due, UTC)).defer_async(
            number=number, ref=due)

    async def close(self) -> None:
        await app.close_async()
