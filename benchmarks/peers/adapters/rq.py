"""RQ: no priority field, so priority is queue order (a worker serves ``high`` before ``bench``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import harness
from redis import Redis
from rq import Queue

from adapters import _record

SETTINGS = ("2 x `rq worker -w rq.worker.SimpleWorker --with-scheduler high bench` (no fork "
            "per job: the default forking Worker drained only ~75 tasks/s here); bulk via "
            "Queue.enqueue_many")


def noop(number: int, ref: float) -> None:
    _record.append(number, ref)


def worker_commands(url: str, record: object, workload: str) -> list[harness.Command]:
    # -c (a settings module) imports this module once, before any job runs.
    argv = [harness.bin_path("rq"), "worker", "-u", url, "-c", "adapters.rq", "-w",
            "rq.worker.SimpleWorker", "--with-scheduler", "--quiet", "high", "bench"]
    return [harness.Command(argv) for _ in range(2)]


class Producer(harness.Producer):
    bulk = True

    def open(self) -> None:
        connection = Redis.from_url(_record.url())
        self.queues = {None: Queue("bench", connection=connection),
                       "low": Queue("bench", connection=connection),
                       "high": Queue("high", connection=connection)}

    def enqueue(self, number: int, ref: float, priority: str | None = None) -> None:
        self.queues[priority].enqueue(noop, number, ref)

    def enqueue_many(self, items: Sequence[tuple[int, float]], priority: str | None = None
                     ) -> None:
        self.queues[priority].enqueue_many(
            [Queue.prepare_data(noop, args=(number, ref)) for number, ref in items])

    def enqueue_at(self, number: int, due: float) -> None:
        self.queues[None].enqueue_at(datetime.fromtimestamp(due, UTC), noop, number, due)
