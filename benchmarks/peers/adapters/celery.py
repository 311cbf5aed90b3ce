"""Celery on Redis, with the Redis transport's documented priority settings.

On Redis, priority 0 is the highest; ``queue_order_strategy="priority"`` makes the worker
read the per-priority lists in order. ETA tasks are held in worker memory until due.
"""

from __future__ import annotations

from datetime import UTC, datetime

import harness
from celery import Celery

from adapters import _record

SETTINGS = ("celery worker -P prefork -c 2 (2 child processes), prefetch multiplier 4 "
            "(default), --without-gossip --without-mingle --without-heartbeat; "
            "Redis priority_steps 0-9, queue_order_strategy=priority")

app = Celery("peerbench", broker=_record.url())
app.conf.update(
    task_default_queue="bench",
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    broker_transport_options={"priority_steps": list(range(10)), "sep": ":",
                              "queue_order_strategy": "priority"},
)
PRIORITY = {None: None, "low": 9, "high": 0}


@app.task(name="noop")
def noop(number: int, ref: float) -> None:
    _record.append(number, ref)


def worker_commands(url: str, record: object, workload: str) -> list[harness.Command]:
    return [harness.Command([harness.bin_path("celery"), "-A", "adapters.celery", "worker",
                             "-P", "prefork", "-c", "2", "-Q", "bench", "-l", "WARNING",
                             "--without-gossip", "--without-mingle", "--without-heartbeat"])]


class Producer(harness.Producer):
    """No bulk publish in Celery (a ``group`` publishes its tasks one by one)."""

    def enqueue(self, number: int, ref: float, priority: str | None = None) -> None:
        noop.apply_async((number, ref), priority=PRIORITY[priority])

    def enqueue_at(self, number: int, due: float) -> None:
        noop.apply_async((number, due), eta=datetime.fromtimestamp(due, UTC))
