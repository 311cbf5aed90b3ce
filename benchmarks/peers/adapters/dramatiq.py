"""Dramatiq on Redis. Priority is the actor's ``priority`` (lower runs first), which orders
messages only once a worker has prefetched them: that is all Dramatiq offers on Redis."""

from __future__ import annotations

import time

import dramatiq
import harness
from dramatiq.brokers.redis import RedisBroker

from adapters import _record

SETTINGS = ("dramatiq -p 2 -t 8 (2 processes x 8 threads, the defaults on 2 cores; "
            "prefetch = 2 x threads by default); max_retries=0")

dramatiq.set_broker(RedisBroker(url=_record.url()))


def _noop(number: int, ref: float) -> None:
    _record.append(number, ref)


noop = dramatiq.actor(_noop, actor_name="noop", queue_name="bench", max_retries=0,
                      priority=100)
noop_high = dramatiq.actor(_noop, actor_name="noop_high", queue_name="bench", max_retries=0,
                           priority=0)


def worker_commands(url: str, record: object, workload: str) -> list[harness.Command]:
    return [harness.Command([harness.bin_path("dramatiq"), "adapters.dramatiq", "-p", "2",
                             "-t", "8"])]


class Producer(harness.Producer):
    """No bulk enqueue (a ``group`` sends its messages one by one)."""

    def enqueue(self, number: int, ref: float, priority: str | None = None) -> None:
        (noop_high if priority == "high" else noop).send(number, ref)

    def enqueue_at(self, number: int, due: float) -> None:
        delay_ms = max(0, int((due - time.time()) * 1000))
        noop.send_with_options(args=(number, due), delay=delay_ms)
