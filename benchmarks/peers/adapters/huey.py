"""huey on Redis: ``PriorityRedisHuey`` so that P can be measured (needs Redis >= 5)."""

from __future__ import annotations

import time

import harness
from huey import PriorityRedisHuey

from adapters import _record

SETTINGS = ("huey_consumer -w 2 -k process (2 worker processes, blocking pop); "
            "scheduler interval 1 s (default); None results are not stored (default)")

huey = PriorityRedisHuey("peerbench", url=_record.url())
PRIORITY = {None: None, "low": 0, "high": 9}


@huey.task()
def noop(number: int, ref: float) -> None:
    _record.append(number, ref)


def worker_commands(url: str, record: object, workload: str) -> list[harness.Command]:
    return [harness.Command([harness.bin_path("huey_consumer"), "adapters.huey.huey",
                             "-w", "2", "-k", "process", "-q"])]


class Producer(harness.Producer):
    """No bulk enqueue in huey (``map`` enqueues one by one)."""

    def enqueue(self, number: int, ref: float, priority: str | None = None) -> None:
        huey.enqueue(noop.s(number, ref, priority=PRIORITY[priority]))

    def enqueue_at(self, number: int, due: float) -> None:
        noop.schedule(args=(number, due), delay=max(0.0, due - time.time()))
