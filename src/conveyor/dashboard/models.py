"""What the dashboard's JSON API returns and accepts.

These structs are the single source of the API's shapes: handlers encode them with msgspec and
the OpenAPI document takes its schemas from them (``msgspec.json.schema_components``), so the
documentation cannot drift from the responses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from conveyor.model import LatencySummary, MinutePoint, TaskInfo, TaskState


class QueueView(msgspec.Struct, kw_only=True):
    """One queue's card: depth per state now, and the stats window's counters and latencies."""

    queue: str
    counts: dict[str, int]
    depth: int
    """Tasks waiting: SCHEDULED + PENDING + FAILED (a retry is scheduled)."""
    running: int
    paused: bool
    workers: int
    """Live workers that consume this queue (0 shows the "no workers" badge)."""
    oldest_pending_age: float | None
    window_seconds: float
    enqueued: int
    succeeded: int
    failed: int
    retried: int
    dead: int
    cancelled: int
    throughput: float
    """Succeeded tasks per second over the window."""
    error_rate: float
    dead_per_minute: float
    wait: LatencySummary
    latency: LatencySummary
    series: list[MinutePoint]


class WorkerView(msgspec.Struct, kw_only=True):
    id: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    busy: int
    utilization: float
    """Busy slots / total slots, 0..1."""
    started_at: datetime
    last_seen: datetime


class WorkersView(msgspec.Struct, kw_only=True):
    workers: list[WorkerView]
    busy_slots: int
    total_slots: int
    utilization: float


class StatsView(msgspec.Struct, kw_only=True):
    """Everything the overview page polls: every queue and the worker fleet."""

    queues: list[QueueView]
    workers: WorkersView
    read_only: bool
    generated_at: datetime


class TaskPage(msgspec.Struct, kw_only=True):
    tasks: list[TaskInfo]
    limit: int
    offset: int
    next_offset: int | None
    """Offset of the next page, None on the last one."""


class ScheduleView(msgspec.Struct, kw_only=True):
    name: str
    task: str
    cron: str
    timezone: str
    misfire: str
    next_run: datetime
    last_run: datetime | None
    last_task_id: str | None


class ActionResult(msgspec.Struct, kw_only=True):
    """What a state-changing call did: ``count`` tasks affected, ``ids`` where known."""

    action: str
    count: int
    ids: list[str] = msgspec.field(default_factory=list)
    queue: str | None = None


class CsrfToken(msgspec.Struct, kw_only=True):
    token: str
    """Send it back as the ``X-CSRF-Token`` header (with the cookie this response set)."""


class Error(msgspec.Struct, kw_only=True):
    error: str
    status: int


# -- request bodies ------------------------------------------------------------------------------

TaskId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
TaskIds = Annotated[list[TaskId], msgspec.Meta(max_length=1000)]
QueueName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class IdsBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    ids: Annotated[TaskIds, msgspec.Meta(min_length=1)]


class PurgeBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    state: TaskState = TaskState.DEAD


class DeadRequeueBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Requeue ``ids``, or with ``all`` every dead task (of ``queue`` when given)."""

    ids: TaskIds = msgspec.field(default_factory=list)
    all: bool = False
    queue: QueueName | None = None


class DeadPurgeBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    queue: QueueName | None = None
    """None purges the dead tasks of every queue."""
