"""taskiq with taskiq-redis's ``RedisStreamBroker`` (the one with acknowledgements).

No priorities and no bulk kick. Delayed tasks need the separate ``taskiq scheduler`` process
and a schedule source; it is started for D only, with its default intervals.
"""

from __future__ import annotations

from datetime import UTC, datetime

import harness
from taskiq import TaskiqScheduler
from taskiq_redis import ListRedisScheduleSource, RedisStreamBroker

from adapters import _record

SETTINGS = ("`taskiq worker --workers 2` (2 processes, default max-async-tasks and ack when "
            "saved); D also runs `taskiq scheduler` with ListRedisScheduleSource (defaults)")

broker = RedisStreamBroker(_record.url(), queue_name="bench")
source = ListRedisScheduleSource(_record.url())
scheduler = TaskiqScheduler(broker, sources=[source])


@broker.task(task_name="noop")
async def noop(number: int, ref: float) -> None:
    _record.append(number, ref)


def worker_commands(url: str, record: object, workload: str) -> list[harness.Command]:
    commands = [harness.Command([harness.bin_path("taskiq"), "worker", "adapters.taskiq:broker",
                                 "--workers", "2", "--log-level", "WARNING"])]
    if workload == "D":
        commands.append(harness.Command([harness.bin_path("taskiq"), "scheduler",
                                         "adapters.taskiq:scheduler", "--skip-first-run",
                                         "--log-level", "WARNING"]))
    return commands


class Producer(harness.AsyncProducer):
    priorities = False

    async def open(self) -> None:
        await broker.startup()
        await source.startup()

    async def enqueue(self, number: int, ref: float, priority: str | None = None) -> None:
        await noop.kiq(number, ref)

    async def enqueue_at(self, number: int, due: float) -> None:
        await noop.schedule_by_time(source, datetime.fromtimestamp(due, UTC), number, due)

    async def close(self) -> None:
        await source.shutdown()
        await broker.shutdown()
