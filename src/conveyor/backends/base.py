"""The seam between policy and storage.

A backend only moves state atomically; every decision (retry or not, how long to wait, which
queue, how to encode) is made above it, once. Each transition is a small frozen value, so the same
description runs through a backend's sync runner (a Django view, the CLI) and its async runner
(the worker, a FastAPI handler) without a second copy of any backend:

    backend.execute(Claim(...))          # sync
    await backend.aexecute(Claim(...))   # async

Transitions on tasks (each one atomic: one SQL transaction or one Lua call, on a whole batch):

=================  ===========================================================================
Enqueue            -> PENDING or SCHEDULED; an idempotency key already present returns that task
Claim              due SCHEDULED/FAILED -> PENDING, then PENDING -> RUNNING with a fresh lease
                   token and a deadline from the backend's clock; priority order, plus a share
                   taken oldest-first so low priorities never starve
Complete           RUNNING -> DONE, guarded by the lease token (a stale token is reported lost)
Fail               RUNNING -> FAILED (retry at a time) or DEAD with a reason, guarded by the
                   lease token (also how a malformed message found at claim reaches the DLQ);
                   appends the attempt's error to the task's last ATTEMPT_ERRORS_KEPT
Extend             pushes the lease deadline of RUNNING tasks out, guarded by the lease token
Release            RUNNING -> PENDING without counting the attempt (prefetched, never started)
RecoverExpired     RUNNING past its deadline -> PENDING (attempt counted) or DEAD (worker_lost)
Cancel             SCHEDULED/PENDING/FAILED -> CANCELLED
Requeue            DEAD/CANCELLED -> PENDING, attempts reset (never DONE: its key promises one run)
Purge              deletes the tasks of a queue in a state
DeleteTasks        deletes tasks by id, in any state but RUNNING (with their idempotency keys)
Prune              deletes finished tasks whose retention ran out, and silent workers
=================  ===========================================================================

Metrics (kept in the backend so every process reads the cluster-wide figures): RecordMetrics
(add counts per queue, minute and name, and to the never-pruned totals), MetricsRead. Enqueue
counts ``enqueued`` itself, in its own transaction; Prune drops per-minute rows past retention.

Queues: PauseQueue (a paused queue keeps its tasks but no claim takes from it, checked inside
the claim itself on every backend; resuming makes them claimable again).

Worker registry: RegisterWorker (insert or refresh one worker's row), UnregisterWorker.
Leadership and schedules: AcquireLock (take or renew a named lease with a TTL; True when we hold
it), ReleaseLock, RecordScheduleRun (the newest enqueued run of a cron schedule, never moving
backwards), GetScheduleRuns.
Reads (never change state): GetTasks, ListTasks, QueueStatsRead, ListWorkers, NextDueAt, Now,
MetricsRead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import msgspec

R = TypeVar("R", covariant=True)
T = TypeVar("T")

ATTEMPT_ERRORS_KEPT = 10
"""Fail keeps the errors of a task's last this many attempts (oldest dropped first)."""
ATTEMPT_ERROR_CHARS = 2000
"""Each kept attempt error is cut to its first this many characters (``error`` keeps the last
attempt's whole)."""


class Transition(Generic[R]):
    """Base of every operation a backend executes; ``R`` is what it returns."""

    __slots__ = ()


# ---------------------------------------------------------------------------------------------
# Rows that cross the seam
#
# The rows and transitions are frozen msgspec Structs. Built per task (NewTask, ClaimedTask,
# Lease, Completion, Failure, and the worker's TaskContext, Prepared and Outcome), a frozen
# dataclass sets each field through object.__setattr__, 3.9 us for a ClaimedTask against 0.19
# us, and a draining worker spent a tenth of its loop there. The rest are Structs for start-up:
# a dataclass generates its methods with exec at import, and 34 of them made this module 52 ms
# of every process's start (a worker's, a producer's, each CLI call), 17 ms as Structs.
# Recovered stays a dataclass: its per-queue detail is left out of its equality.
# ---------------------------------------------------------------------------------------------


class NewTask(msgspec.Struct, frozen=True):
    """A task ready to be written: encoded, validated, with its id chosen by the producer."""

    id: str
    name: str
    queue: str
    payload: bytes
    priority: int
    max_retries: int
    delay_seconds: float = 0.0
    """Seconds after the backend's ``now`` at which the task becomes due (0 = now)."""
    eta: float | None = None
    """Absolute due time, epoch seconds; wins over ``delay_seconds`` when set."""
    idempotency_key: str | None = None
    timeout_seconds: float | None = None
    result_ttl_seconds: float = 86400.0


class EnqueueOutcome(msgspec.Struct, frozen=True):
    id: str
    created: bool
    """False when an existing task with the same idempotency key was returned instead."""


class ClaimedTask(msgspec.Struct, frozen=True):
    """A leased task as a worker receives it."""

    id: str
    name: str
    queue: str
    payload: bytes
    priority: int
    attempts: int
    """Including this one: 1 on the first run."""
    max_retries: int
    worker_lost: int
    lease_token: str
    lease_expires_at: float
    created_at: float
    scheduled_at: float
    idempotency_key: str | None
    timeout_seconds: float | None
    result_ttl_seconds: float


class Waiter(msgspec.Struct, frozen=True):
    """A worker in :meth:`Backend.wait_for_work`, for backends that hand a new task straight
    to a waiting worker instead of waking it to claim."""

    worker_id: str
    lease_seconds: float
    open: bool
    """Whether it would start a task at once (a free slot, nothing buffered): only then is
    a task handed to it."""


class Lease(msgspec.Struct, frozen=True):
    id: str
    lease_token: str
    queue: str | None = None
    """A hint from the worker, which knows it: backends that shard by queue (Redis Cluster)
    skip looking it up. Backends must accept None and find the queue themselves."""


class Completion(msgspec.Struct, frozen=True):
    id: str
    lease_token: str
    result: bytes | None
    queue: str | None = None
    """A hint, as in :class:`Lease`."""
    started_at: float | None = None
    """When the attempt really started, on the backend's clock (the lease's start plus the
    worker's own monotonic offset): a task that waited in the prefetch buffer started after its
    lease did. The backend keeps it between the lease's start and now; None keeps the lease's
    start."""


class Failure(msgspec.Struct, frozen=True):
    id: str
    lease_token: str
    error: str
    retry_in_seconds: float | None
    """None sends the task to the DLQ with ``dead_reason``."""
    dead_reason: str | None = None
    worker_lost: bool = False
    """The attempt ended because the process running it died (counted in ``worker_lost``)."""
    queue: str | None = None
    """A hint, as in :class:`Lease`."""
    started_at: float | None = None
    """As in :class:`Completion`."""


class TaskRow(msgspec.Struct, frozen=True):
    """A task as stored; :mod:`conveyor.inspect` turns it into a public ``TaskInfo``."""

    id: str
    name: str
    queue: str
    payload: bytes
    priority: int
    state: str
    attempts: int
    max_retries: int
    worker_lost: int
    created_at: float
    scheduled_at: float | None
    started_at: float | None
    completed_at: float | None
    worker_id: str | None
    error: str | None
    result: bytes | None
    idempotency_key: str | None
    dead_reason: str | None
    timeout_seconds: float | None
    attempt_errors: str | None = None
    """JSON array of the last attempts' errors, oldest first: ``{"attempt", "worker",
    "ended_at", "error"}`` each (every backend stores or renders this same text)."""


class WorkerRow(msgspec.Struct, frozen=True):
    id: str
    host: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    busy: int
    started_at: float
    last_seen: float


class QueueCounts(msgspec.Struct, frozen=True):
    queue: str
    counts: dict[str, int]
    oldest_pending_at: float | None
    paused: bool = False
    """A paused queue is listed even when it holds no task."""


def queue_counts(
    rows: Sequence[tuple[str, str, int, float | None]], paused: Sequence[str]
) -> list[QueueCounts]:
    """Per-queue counts from (queue, state, count, oldest pending due time) rows, with the
    paused queues marked (and listed even without a task), sorted by queue."""
    counts: dict[str, dict[str, int]] = {}
    oldest: dict[str, float] = {}
    for queue, state, count, oldest_at in rows:
        counts.setdefault(queue, {})[state] = int(count)
        if oldest_at is not None:
            oldest[queue] = float(oldest_at)
    stopped = set(paused)
    return [
        QueueCounts(queue, counts.get(queue, {}), oldest.get(queue), queue in stopped)
        for queue in sorted(set(counts) | stopped)
    ]


@dataclass(frozen=True, slots=True)
class Recovered:
    requeued: int
    dead: int
    per_queue: dict[str, tuple[int, int]] = field(default_factory=dict, compare=False)
    """queue -> (requeued, dead), for the metrics (expired leases per queue)."""


def recovered(rows: Sequence[Sequence[Any]]) -> Recovered:
    """A Recovered from (state, ..., queue) rows, the queue last."""
    per_queue: dict[str, tuple[int, int]] = {}
    dead = 0
    for row in rows:
        is_dead = row[0] == "DEAD"
        dead += is_dead
        requeued_q, dead_q = per_queue.get(row[-1], (0, 0))
        per_queue[row[-1]] = (requeued_q + (not is_dead), dead_q + is_dead)
    return Recovered(requeued=len(rows) - dead, dead=dead, per_queue=per_queue)


class MetricCount(msgspec.Struct, frozen=True):
    """One counter (or histogram bucket, or sum) of one queue over one minute."""

    queue: str
    minute: int
    """floor(epoch seconds / 60) on the backend's clock; 0 = the totals since the beginning."""
    name: str
    value: float


# ---------------------------------------------------------------------------------------------
# Transitions on tasks
# ---------------------------------------------------------------------------------------------


class Enqueue(msgspec.Struct, Transition[list[EnqueueOutcome]], frozen=True):
    tasks: Sequence[NewTask]


class Claim(msgspec.Struct, Transition[list[ClaimedTask]], frozen=True):
    worker_id: str
    queues: Sequence[str]
    """Served in this order; the worker rotates it between claims so every queue gets a turn."""
    limit: int
    lease_seconds: float
    oldest_first: int = 0
    """How many of ``limit`` are taken oldest-ready-first instead of by priority."""
    min_priority: int = 0
    """Only tasks of at least this priority (the worker's urgent claim when its prefetch is
    full: only what would overtake everything it holds is worth taking then)."""


class Complete(msgspec.Struct, Transition[list[str]], frozen=True):
    """Returns the ids whose lease was lost (nothing changed for them)."""

    completions: Sequence[Completion]


class Fail(msgspec.Struct, Transition[list[str]], frozen=True):
    """Returns the ids whose lease was lost."""

    failures: Sequence[Failure]


class Extend(msgspec.Struct, Transition[list[str]], frozen=True):
    """Returns the ids whose lease was lost."""

    worker_id: str
    leases: Sequence[Lease]
    lease_seconds: float


class Release(msgspec.Struct, Transition[list[str]], frozen=True):
    """Returns the ids whose lease was lost."""

    leases: Sequence[Lease]


class RecoverExpired(msgspec.Struct, Transition[Recovered], frozen=True):
    max_worker_lost: int
    limit: int = 1000


class Cancel(msgspec.Struct, Transition[list[str]], frozen=True):
    """Returns the ids that were cancelled (the others had started or finished)."""

    ids: Sequence[str]


class Requeue(msgspec.Struct, Transition[list[str]], frozen=True):
    """Returns the ids that went back to PENDING."""

    ids: Sequence[str]


class Purge(msgspec.Struct, Transition[int], frozen=True):
    queue: str | None
    state: str


class DeleteTasks(msgspec.Struct, Transition[list[str]], frozen=True):
    """Delete these tasks, whatever their state but RUNNING (a worker holds it: cancel is not
    possible either; delete it once it has finished). Their idempotency keys are released.
    Returns the ids deleted; unknown and RUNNING ids are left out."""

    ids: Sequence[str]


WORKER_SILENCE_SECONDS = 300.0
"""A worker whose heartbeat has been silent this long is gone: pruned from the registry, and
left out of every read of it before that (pruning runs only where a worker is alive)."""


class Prune(msgspec.Struct, Transition[int], frozen=True):
    worker_silence_seconds: float = WORKER_SILENCE_SECONDS
    metrics_retention_seconds: float = 3600.0
    """Per-minute metric rows older than this go (the totals stay)."""


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


class RecordMetrics(msgspec.Struct, Transition[None], frozen=True):
    """Add each count to its (queue, minute, name) and to the queue's totals (minute 0).

    One call per worker flush (about once a second), whatever the number of tasks."""

    counts: Sequence[MetricCount]
    retention_seconds: float = 3600.0
    """How long per-minute counts are kept where the backend expires them itself (Redis)."""


class MetricsRead(msgspec.Struct, Transition[list[MetricCount]], frozen=True):
    """The totals (minute 0) and the per-minute counts of minutes ``since_minute`` through
    ``until_minute``, summed over shards."""

    since_minute: int
    until_minute: int


# ---------------------------------------------------------------------------------------------
# Queues
# ---------------------------------------------------------------------------------------------


class PauseQueue(msgspec.Struct, Transition[None], frozen=True):
    """Stop (``paused=True``) or restart claims from ``queue``; no task moves."""

    queue: str
    paused: bool


# ---------------------------------------------------------------------------------------------
# Worker registry
# ---------------------------------------------------------------------------------------------


class RegisterWorker(msgspec.Struct, Transition[None], frozen=True):
    worker: WorkerRow


class UnregisterWorker(msgspec.Struct, Transition[None], frozen=True):
    worker_id: str


# ---------------------------------------------------------------------------------------------
# Leadership and schedules
# ---------------------------------------------------------------------------------------------


class AcquireLock(msgspec.Struct, Transition[bool], frozen=True):
    """Take the lock ``name`` if it is free or expired, or renew it if ``holder`` has it.

    Returns True when ``holder`` holds it for the next ``ttl_seconds`` (backend clock)."""

    name: str
    holder: str
    ttl_seconds: float


class ReleaseLock(msgspec.Struct, Transition[None], frozen=True):
    name: str
    holder: str


class ScheduleRun(msgspec.Struct, frozen=True):
    name: str
    last_due_at: float
    """Epoch seconds of the newest run enqueued."""
    last_task_id: str | None


class RecordScheduleRun(msgspec.Struct, Transition[None], frozen=True):
    """Store ``run`` unless a newer run is already recorded (two leaders may overlap)."""

    run: ScheduleRun


class GetScheduleRuns(msgspec.Struct, Transition[list[ScheduleRun]], frozen=True):
    names: Sequence[str]


# ---------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------


class GetTasks(msgspec.Struct, Transition[list[TaskRow]], frozen=True):
    ids: Sequence[str]
    queue: str | None = None
    """A hint (a ``TaskHandle`` knows its task's queue): backends that shard by queue look
    there first. Ids not found there are still looked up everywhere; others ignore it."""


class ListTasks(msgspec.Struct, Transition[list[TaskRow]], frozen=True):
    queue: str | None = None
    state: str | None = None
    limit: int = 100
    offset: int = 0


class QueueStatsRead(msgspec.Struct, Transition[list[QueueCounts]], frozen=True):
    pass


class ListWorkers(msgspec.Struct, Transition[list[WorkerRow]], frozen=True):
    pass


class NextDueAt(msgspec.Struct, Transition[float | None], frozen=True):
    """Epoch seconds of the earliest SCHEDULED/FAILED task in these queues, or None."""

    queues: Sequence[str] = msgspec.field(default_factory=tuple)


class Now(msgspec.Struct, Transition[float], frozen=True):
    """The backend's clock, epoch seconds."""


# ---------------------------------------------------------------------------------------------
# The backend protocol
# ---------------------------------------------------------------------------------------------


class Backend(Protocol):
    """A storage engine. Every method is safe to call from many threads and after ``fork()``."""

    url: str
    signals_priority: bool
    """Whether :meth:`wait_for_urgent` announces urgent arrivals; where it does not, the
    worker looks for urgent work with claims of its own (backing off while they find none)."""
    claim_batch: int | None
    """The most tasks a worker's claim should lease at once (None: as many as it has room
    for). Where a claim holds the whole store while it runs, its size bounds how long every
    other client waits behind it, an urgent enqueue and the claim that would take it too."""

    def execute(self, op: Transition[T]) -> T:
        """Run one transition atomically and return its reply."""
        ...

    async def aexecute(self, op: Transition[T]) -> T:
        """The same, from async code."""
        ...

    async def wait_for_work(self, queues: Sequence[str], timeout: float,
                            waiter: Waiter | None = None) -> list[ClaimedTask]:
        """Return when work may have arrived in ``queues`` since this process's last ``Claim``,
        or after ``timeout`` seconds.

        Measured from the last claim, not from the call, so an enqueue that lands between a
        claim that found nothing and this wait is not missed. A hint, not a promise: callers
        claim afterwards and may find nothing.

        A backend that hands tasks over (Redis on one server) may instead return tasks it
        leased to ``waiter`` while it waited: they are claimed already, and the caller runs
        them without claiming. Others return an empty list.
        """
        ...

    async def withdraw(self, queues: Sequence[str], waiter: Waiter) -> list[ClaimedTask]:
        """``waiter`` stops waiting for ``queues``: nothing is handed to it from now on.
        Returns the tasks handed to it that it has not received yet (leased to it: the caller
        releases or runs them)."""
        ...

    async def wait_for_urgent(self, queues: Sequence[str], timeout: float) -> int | None:
        """Return the highest priority of the tasks that became PENDING in ``queues`` ahead of
        every task already waiting there, announced since the previous return; None after
        ``timeout`` seconds (at once, or after the timeout, where ``signals_priority`` is
        false). A hint for busy workers, whose prefetch buffers may hold only lower
        priorities: it lets them claim such a task at once instead of after the buffer drains.
        """
        ...

    def wait_for_change(self, timeout: float) -> None:
        """Block until anything may have changed, or ``timeout`` seconds (sync callers)."""
        ...

    async def warm_up(self, connections: int) -> None:
        """Open ``connections`` connections for the running loop now, while it is idle (a
        worker before its first claim). Opened on demand, they come when the loop is at its
        busiest, running its first batch, and each costs several round trips there. A failure
        is not raised: the connections open on demand then, as before."""
        ...

    def declare_queue(self, queue: str, partitions: int = 1) -> None:
        """Split ``queue`` into ``partitions`` (Redis); backends without shards ignore it."""
        ...

    async def upkeep(self) -> None:
        """Storage housekeeping, run by the pruner after each prune: what the store needs so
        that churn does not grow it for ever (PostgreSQL: vacuum the tables whose dead rows
        piled up, where the server's autovacuum is off or behind). Never blocks transitions;
        safe from many workers at once."""
        ...

    async def release_loop(self) -> None:
        """Close what this backend holds for the running event loop (its async pool or client,
        its watchers); a later call on the loop opens them afresh.

        For whoever owns a loop that is about to end. ``asyncio.run`` cancels the loop's
        remaining tasks before it finalizes anything, and a connection pool whose maintenance
        task is cancelled in the middle of a connect swallows the cancellation and keeps the
        loop from ever closing: a worker process then ignores SIGTERM. Closed here, the pool
        stops its tasks itself."""
        ...

    def close(self) -> None: ...


class WaitsInThread(Protocol):
    """A backend whose hand-off wait a worker's pool thread can make, blocking (Redis on one
    server, where ``waits_in_thread`` is true): a task handed to that thread starts right
    there, without the event loop's wake-up in between (``worker/thread_watch.py``)."""

    waits_in_thread: bool

    def wait_in_thread(self, queues: Sequence[str], seconds: float, waiter: Waiter
                       ) -> list[ClaimedTask]:
        """:meth:`Backend.wait_for_work`, blocking, for at most ``seconds``: the tasks handed
        to ``waiter``, or none (work may have arrived, the time ran out, or the wait was
        interrupted). Raises ``BackendUnavailable`` when the store cannot be reached."""
        ...

    async def interrupt_wait(self, queues: Sequence[str], waiter: Waiter) -> None:
        """Make ``waiter``'s running (or next) :meth:`wait_in_thread` return at once."""
        ...


def transition_names() -> list[str]:
    """Names of every transition, in snake_case: a backend keeps one query file per name."""
    import re

    names = []
    for cls in _all_transitions():
        names.append(re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower())
    return names


def _all_transitions() -> list[type[Transition[Any]]]:
    return [
        cls
        for cls in globals().values()
        if isinstance(cls, type) and issubclass(cls, Transition) and cls is not Transition
    ]
