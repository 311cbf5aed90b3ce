"""The task record and its states, shared by every backend and every reader."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import msgspec


class TaskState(StrEnum):
    """Where a task is in its life. Values are the names, so ``info.state == "DONE"`` holds.

    Each state says who moves a task into it and who moves it out.
    """

    SCHEDULED = "SCHEDULED"
    """Waiting for its ``eta`` (a delayed task). In: enqueue with delay/eta. Out: claim, once due
    (promoted to PENDING inside the claim), or cancel."""

    PENDING = "PENDING"
    """Ready to run. In: enqueue, a due SCHEDULED/FAILED task, lease recovery, release, requeue.
    Out: claim (-> RUNNING) or cancel."""

    RUNNING = "RUNNING"
    """Leased to one worker until its lease deadline. In: claim. Out: complete, fail, release
    (graceful shutdown) or lease recovery when the deadline passes without a heartbeat."""

    DONE = "DONE"
    """Finished; the result is kept until ``result_ttl`` runs out, then the pruner deletes it."""

    FAILED = "FAILED"
    """An attempt raised and a retry is scheduled (``scheduled_at`` is the retry time).
    Out: claim once due, or cancel."""

    DEAD = "DEAD"
    """In the dead-letter queue: retries exhausted, a non-retryable error, a malformed message,
    or a worker lost too often. Out: requeue (attempts reset) or purge. Never pruned by age."""

    CANCELLED = "CANCELLED"
    """Cancelled before it ran. Pruned like DONE."""

    @property
    def finished(self) -> bool:
        return self in FINISHED_STATES


FINISHED_STATES = frozenset({TaskState.DONE, TaskState.DEAD, TaskState.CANCELLED})
WAITING_STATES = frozenset({TaskState.SCHEDULED, TaskState.PENDING, TaskState.FAILED})


class DeadReason(StrEnum):
    """Why a task entered the dead-letter queue."""

    MAX_RETRIES = "max_retries"
    NOT_RETRYABLE = "not_retryable"
    WORKER_LOST = "worker_lost"
    DECODE_ERROR = "decode_error"
    UNKNOWN_TASK = "unknown_task"


def to_datetime(epoch_seconds: float | None) -> datetime | None:
    """Backends store times as float seconds since the epoch; readers see aware UTC datetimes."""
    if epoch_seconds is None:
        return None
    return datetime.fromtimestamp(epoch_seconds, tz=UTC)


class AttemptError(msgspec.Struct, kw_only=True):
    """How one attempt of a task ended in an error, as the fail transition stored it."""

    attempt: int
    """1 for the first run; counts again from 1 after a requeue."""
    worker: str | None
    ended_at: datetime
    error: str
    """The error and its traceback, cut to ``ATTEMPT_ERROR_CHARS`` characters (bytes on Redis)."""


class TaskInfo(msgspec.Struct, kw_only=True):
    """A snapshot of one task, as read from the backend."""

    id: str
    name: str
    queue: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    priority: int
    state: TaskState
    attempts: int
    max_retries: int
    created_at: datetime
    scheduled_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    worker_id: str | None
    error: str | None
    result: Any
    idempotency_key: str | None
    dead_reason: str | None = None
    worker_lost: int = 0
    timeout: float | None = None
    payload_error: str | None = None
    """Set when the stored payload could not be decoded (args/kwargs are then empty)."""
    attempt_errors: list[AttemptError] = msgspec.field(default_factory=list)
    """The errors of the last attempts that failed (at most ``ATTEMPT_ERRORS_KEPT``), oldest
    first; ``error`` is the last one, whole. Attempts ended by a lost worker's expired lease
    are not in it (``worker_lost`` counts them)."""


class WorkerInfo(msgspec.Struct, kw_only=True):
    """One live (or recently live) worker process, from the worker registry."""

    id: str
    host: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    busy: int
    started_at: datetime
    last_seen: datetime

    @property
    def utilization(self) -> float:
        return self.busy / self.concurrency if self.concurrency else 0.0


class LatencySummary(msgspec.Struct, kw_only=True):
    """Percentiles, in seconds, of one latency over the stats window (None: no samples)."""

    count: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


class MinutePoint(msgspec.Struct, kw_only=True):
    """One minute of a queue's history, for graphs: counts and the minute's p99 latencies."""

    at: datetime
    """Start of the minute (UTC)."""
    enqueued: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    dead: int = 0
    wait_p99: float | None = None
    latency_p99: float | None = None


class QueueStats(msgspec.Struct, kw_only=True):
    """One queue: its depth per state now, and what happened to it over the stats window.

    Counters and latencies come from the metrics the backend keeps (written with the acks), so
    every process reads the same cluster-wide figures.
    """

    queue: str
    counts: dict[str, int]
    oldest_pending_age: float | None = None
    paused: bool = False
    window_seconds: float = 300.0
    enqueued: int = 0
    started: int = 0
    """Attempts that began running."""
    succeeded: int = 0
    failed: int = 0
    """Attempts that raised (retried or dead)."""
    retried: int = 0
    dead: int = 0
    cancelled: int = 0
    expired: int = 0
    """Leases that ran out (worker lost): back to the queue, or DEAD after too many."""
    wait: LatencySummary = msgspec.field(default_factory=LatencySummary)
    """Enqueue (or due time) -> start."""
    latency: LatencySummary = msgspec.field(default_factory=LatencySummary)
    """Enqueue (or due time) -> done: what a producer waits for a result."""
    duration: LatencySummary = msgspec.field(default_factory=LatencySummary)
    """Start -> end of the attempts that ran, however they ended."""
    series: list[MinutePoint] = msgspec.field(default_factory=list)
    """Oldest first, one point per minute of the window."""
    workers: int = 0
    """Registered workers serving this queue."""
    busy_slots: int = 0
    total_slots: int = 0
    """Slots of the workers serving this queue (a worker serving several queues counts in
    each of them)."""

    @property
    def utilization(self) -> float | None:
        """Busy / total slots of the workers serving this queue; None without workers."""
        return self.busy_slots / self.total_slots if self.total_slots else None

    def rate(self, counter: str) -> float:
        """Events per second over the window, e.g. ``rate("succeeded")``."""
        value: int = getattr(self, counter)
        return value / self.window_seconds if self.window_seconds else 0.0

    @property
    def dead_per_minute(self) -> float:
        return self.rate("dead") * 60.0

    @property
    def error_rate(self) -> float:
        """Share of finished attempts that raised, over the window."""
        finished = self.succeeded + self.failed
        return self.failed / finished if finished else 0.0

    def count(self, state: TaskState | str) -> int:
        return self.counts.get(str(state), 0)


class Stats(msgspec.Struct, kw_only=True):
    """The cluster-wide picture: every queue's depth and every registered worker."""

    queues: dict[str, QueueStats]
    workers: list[WorkerInfo]

    @property
    def busy_slots(self) -> int:
        return sum(w.busy for w in self.workers)

    @property
    def total_slots(self) -> int:
        return sum(w.concurrency for w in self.workers)

    @property
    def utilization(self) -> float:
        total = self.total_slots
        return self.busy_slots / total if total else 0.0

    def total(self, state: TaskState | str) -> int:
        return sum(q.count(state) for q in self.queues.values())
