"""Every transition described once, as data: which statements, with which parameters, and how
to read their replies. The sync and the async runner (``runners.py``) drive the same plans, so
no transition is written twice.

A plan is a generator: it yields a :class:`Statement`, receives its :class:`Reply`, and returns
the transition's result. Most transitions are one statement over a whole batch (arrays unnested
in SQL), so a batch costs one round trip; a few need several steps (a claim promotes, then leases
queue by queue, each step depending on what the previous one took) and run in one transaction.

``now`` is None in production, and the SQL reads the server's clock; a test clock passes its
reading instead (``coalesce(%(now)s, clock_timestamp())`` in every statement).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeAlias, TypeVar

import msgspec

from conveyor.backends import base
from conveyor.backends.queryfiles import load_queries

T = TypeVar("T")
QUERIES = {
    name: text.encode() for name, text in load_queries("conveyor.backends.postgres").items()
}
INLINE = {"now": b"SELECT extract(epoch FROM clock_timestamp())::float8"}
"""Statements that belong to no transition's file (``Now`` is answered in Python by SQLite)."""
_SQL = {**QUERIES, **INLINE}
PROMOTE_LIMIT = 10_000
"""Due tasks promoted per claim: a backlog of due tasks after downtime is promoted over several
claims instead of in one long transaction."""
PRUNE_LIMIT = 10_000
NOTIFY_CHANNEL = "conveyor_work"
"""The channel every transition that makes work notifies, with the queue name as payload."""


@dataclass(frozen=True, slots=True)
class Statement:
    query: str
    """The name of a file in ``queries/`` (or of an ``INLINE`` statement)."""
    params: dict[str, Any]
    wait: bool = True
    """False: the plan does not read this statement's reply, so inside a transaction the runner
    sends it without waiting and the next statement travels in the same round trip (it still
    runs after this one and sees its changes). Its reply is empty."""
    rows: Sequence[tuple[Any, ...]] | None = None
    """A ``COPY ... FROM STDIN (FORMAT BINARY)`` statement: the rows it streams, typed by
    ``types`` (only in a Spec with ``transaction``). Its reply has the row count."""
    types: Sequence[str] = ()

    @property
    def sql(self) -> bytes:
        return _SQL[self.query]


@dataclass(frozen=True, slots=True)
class Reply:
    rows: list[tuple[Any, ...]]
    rowcount: int


Plan: TypeAlias = Generator[Statement, Reply, T]


@dataclass(frozen=True, slots=True)
class Spec:
    """How a transition runs: its plan, and what the runner wraps around it."""

    plan: Callable[[Any, float | None], Plan[Any]]
    transaction: bool = False
    """Several statements that must commit together (one statement is atomic on its own and
    runs in autocommit: one round trip)."""
    writes: bool = True


_JSON = msgspec.json.Encoder()


# -- tasks ----------------------------------------------------------------------------------------


def enqueue(op: base.Enqueue, now: float | None, *, targeted: bool = False
            ) -> Plan[list[base.EnqueueOutcome]]:
    """One statement writes the batch (see enqueue.sql); a second reads the ids that
    idempotency keys already held, if any did. ``targeted``: a single task may wake one idle
    worker instead of all (0006_offers.sql). Only on the backend's own connections, where the
    statement commits as it runs: in a caller's transaction the notification leaves at its
    commit, maybe long after the offer was picked, when that worker may be busy."""
    tasks = list(op.tasks)
    if not tasks:
        return []
    reply = yield Statement("enqueue", {"now": now, "batch": _enqueue_batch(tasks),
                                        "targeted": targeted})
    created = {row[0] for row in reply.rows}
    keys = [t.idempotency_key for t in tasks if t.id not in created]
    existing: dict[str, str] = {}
    if keys:
        found = yield Statement("enqueue_existing", {"keys": keys})
        existing = {key: task_id for key, task_id in found.rows}
    return [
        base.EnqueueOutcome(t.id, created=True) if t.id in created
        else base.EnqueueOutcome(existing[t.idempotency_key or ""], created=False)
        for t in tasks
    ]


def _count_enqueued(now: float | None, per_queue: dict[str, int]) -> Statement:
    """The ``enqueued`` metrics of a batch, counted in its transaction; nothing reads the
    reply, so it travels with the commit."""
    return Statement("record_metrics_now", {
        "now": now, "name": "enqueued", "queues": list(per_queue),
        "counts": [float(n) for n in per_queue.values()],
    }, wait=False)


def _enqueue_batch(tasks: list[base.NewTask]) -> str:
    """The rows of enqueue.sql as one JSON text, payloads in base64."""
    return _JSON.encode([
        (t.id, t.name, t.queue, t.payload, t.priority, t.max_retries, float(t.delay_seconds),
         t.eta, t.idempotency_key, t.timeout_seconds, float(t.result_ttl_seconds))
        for t in tasks
    ]).decode()


COPY_MIN_TASKS = 32
"""From this many tasks without idempotency keys, Enqueue streams its rows with COPY."""
_COPY_TYPES = ("text", "text", "text", "bytea", "int4", "text", "int4", "float8", "float8",
               "float8", "float8")


def enqueue_copy(op: base.Enqueue, now: float | None) -> Plan[list[base.EnqueueOutcome]]:
    """Enqueue a large batch without idempotency keys: the backend's clock and the NOTIFYs
    first, then the rows by binary COPY, then the metrics, all in one transaction. Each row's
    state and due time follow from that one clock reading exactly as enqueue.sql derives them.
    About a quarter cheaper for the server than enqueue.sql (no JSON, no expression per row),
    and psycopg writes the rows in C."""
    tasks = list(op.tasks)
    per_queue: dict[str, int] = {}
    for t in tasks:
        per_queue[t.queue] = per_queue.get(t.queue, 0) + 1
    reply = yield Statement("enqueue_copy_start", {"now": now, "queues": list(per_queue)})
    clock = float(reply.rows[0][0])
    rows = []
    for t in tasks:
        due = t.eta if t.eta is not None else clock + t.delay_seconds
        rows.append((t.id, t.name, t.queue, t.payload, t.priority,
                     "SCHEDULED" if due > clock else "PENDING", t.max_retries, clock,
                     max(due, clock), t.timeout_seconds, float(t.result_ttl_seconds)))
    yield Statement("enqueue_copy", {}, rows=rows, types=_COPY_TYPES)
    yield _count_enqueued(clock, per_queue)
    return [base.EnqueueOutcome(t.id, created=True) for t in tasks]


def copyable(op: base.Enqueue) -> bool:
    """Large enough for COPY to pay for its extra round trips, and no key that could conflict
    (COPY has no ON CONFLICT)."""
    tasks = op.tasks
    return len(tasks) >= COPY_MIN_TASKS and all(t.idempotency_key is None for t in tasks)


def claim(op: base.Claim, now: float | None) -> Plan[list[base.ClaimedTask]]:
    """Take the oldest-first share, then fill up by priority; queues in the order given (the
    worker rotates it). A queue whose step came back short has nothing more to give (SKIP
    LOCKED aside, which the next step would skip too): it is not asked again, so a worker that
    drains a queue pays one round trip per claim, not two.

    The first statement also promotes what is due in all the queues (one statement, not a
    pipeline of three: an idle worker's claim took 0.83-1.01 ms that way, its oldest-first
    statement alone 0.30-0.32). One that moved anything leased nothing, since it could not see
    what it moved, and is sent again."""
    queues = list(op.queues)
    claimed: list[base.ClaimedTask] = []
    emptied: set[str] = set()
    promote = queues
    for query, wanted in (("claim_oldest", min(op.oldest_first, op.limit)), ("claim", None)):
        goal = op.limit if wanted is None else len(claimed) + wanted
        for queue in queues:
            if len(claimed) >= goal:
                break
            if queue in emptied:
                continue
            limit = goal - len(claimed)
            moved = True
            while moved:
                reply = yield Statement(query, {
                    "now": now, "queue": queue, "limit": limit,
                    "worker_id": op.worker_id, "lease_seconds": float(op.lease_seconds),
                    "min_priority": op.min_priority, "promote_queues": promote,
                    "promote_limit": PROMOTE_LIMIT,
                })
                moved, promote = bool(promote) and reply.rows[0][-1] > 0, []
            rows = [row[:-1] for row in reply.rows if row[0] is not None]
            claimed.extend(base.ClaimedTask(*row) for row in rows)
            if len(rows) < limit:
                emptied.add(queue)
    claimed.sort(key=lambda task: -task.priority)
    return claimed


def _lost(given: Sequence[str], reply: Reply) -> list[str]:
    """Lease-guarded statements return the ids they changed; the others were lost."""
    changed = {row[0] for row in reply.rows}
    return [task_id for task_id in given if task_id not in changed]


def complete(op: base.Complete, now: float | None) -> Plan[list[str]]:
    rows = list(op.completions)
    if not rows:
        return []
    reply = yield Statement("complete", {
        "now": now,
        "batch": _JSON.encode([(c.id, c.lease_token, c.result, c.started_at)
                               for c in rows]).decode(),
    })
    return _lost([c.id for c in rows], reply)


def fail(op: base.Fail, now: float | None) -> Plan[list[str]]:
    rows = list(op.failures)
    if not rows:
        return []
    reply = yield Statement("fail", {
        "now": now, "ids": [f.id for f in rows], "lease_tokens": [f.lease_token for f in rows],
        "errors": [f.error for f in rows],
        "retry_ins": [None if f.retry_in_seconds is None else float(f.retry_in_seconds)
                      for f in rows],
        "dead_reasons": [f.dead_reason for f in rows],
        "worker_losts": [int(f.worker_lost) for f in rows],
        "started_ats": [f.started_at for f in rows],
        "errors_kept": base.ATTEMPT_ERRORS_KEPT, "error_chars": base.ATTEMPT_ERROR_CHARS,
    })
    return _lost([f.id for f in rows], reply)


def extend(op: base.Extend, now: float | None) -> Plan[list[str]]:
    rows = list(op.leases)
    if not rows:
        return []
    reply = yield Statement("extend", {
        "now": now, "ids": [lease.id for lease in rows],
        "lease_tokens": [lease.lease_token for lease in rows],
        "lease_seconds": float(op.lease_seconds),
    })
    return _lost([lease.id for lease in rows], reply)


def release(op: base.Release, now: float | None) -> Plan[list[str]]:
    rows = list(op.leases)
    if not rows:
        return []
    reply = yield Statement("release", {
        "ids": [lease.id for lease in rows],
        "lease_tokens": [lease.lease_token for lease in rows],
    })
    return _lost([lease.id for lease in rows], reply)


def recover_expired(op: base.RecoverExpired, now: float | None) -> Plan[base.Recovered]:
    reply = yield Statement("recover_expired", {
        "now": now, "max_worker_lost": op.max_worker_lost, "limit": op.limit,
    })
    return base.recovered(reply.rows)


def _by_ids(query: str) -> Callable[[Any, float | None], Plan[list[str]]]:
    """Requeue and DeleteTasks: one statement over the ids, replying with those it moved, in the
    order they were given."""

    def plan(op: Any, now: float | None) -> Plan[list[str]]:
        ids = list(op.ids)
        if not ids:
            return []
        reply = yield Statement(query, {"now": now, "ids": ids})
        moved = {row[0] for row in reply.rows}
        return [task_id for task_id in dict.fromkeys(ids) if task_id in moved]  # once each

    return plan


def cancel(op: base.Cancel, now: float | None) -> Plan[list[str]]:
    ids = list(op.ids)
    if not ids:
        return []
    reply = yield Statement("cancel", {"now": now, "ids": ids})
    per_queue: dict[str, int] = {}
    for _, queue in reply.rows:
        per_queue[queue] = per_queue.get(queue, 0) + 1
    if per_queue:
        yield Statement("record_metrics_now", {
            "now": now, "name": "cancelled", "queues": list(per_queue),
            "counts": [float(n) for n in per_queue.values()],
        }, wait=False)  # travels with the commit
    moved = {row[0] for row in reply.rows}
    return [task_id for task_id in ids if task_id in moved]


def purge(op: base.Purge, now: float | None) -> Plan[int]:
    reply = yield Statement("purge", {"queue": op.queue, "state": op.state})
    return reply.rowcount


def prune(op: base.Prune, now: float | None) -> Plan[int]:
    yield Statement("prune_workers", {"now": now, "silence": float(op.worker_silence_seconds)})
    yield Statement("prune_offers", {"now": now})
    yield Statement("prune_metrics", {"now": now,
                                      "retention": float(op.metrics_retention_seconds)})
    reply = yield Statement("prune", {"now": now, "limit": PRUNE_LIMIT})
    return reply.rowcount


# -- offers (not transitions: how an idle worker asks to be woken alone, see 0006_offers.sql) -----


def offer(worker_id: str, queues: Sequence[str], channel: str, seconds: float,
          now: float | None) -> Plan[None]:
    yield Statement("offer", {"worker_id": worker_id, "queues": list(queues),
                              "channel": channel, "seconds": float(seconds), "now": now})
    return None


def withdraw(worker_id: str) -> Plan[None]:
    yield Statement("withdraw", {"worker_id": worker_id})
    return None


# -- metrics --------------------------------------------------------------------------------------


def record_metrics(op: base.RecordMetrics, now: float | None) -> Plan[None]:
    counts = list(op.counts)
    if not counts:
        return None
    yield Statement("record_metrics", {
        "queues": [c.queue for c in counts], "minutes": [c.minute for c in counts],
        "names": [c.name for c in counts], "values": [float(c.value) for c in counts],
    })
    return None


def metrics_read(op: base.MetricsRead, now: float | None) -> Plan[list[base.MetricCount]]:
    reply = yield Statement("metrics_read", {"since_minute": op.since_minute,
                                             "until_minute": op.until_minute})
    return [base.MetricCount(q, int(m), n, float(v)) for q, m, n, v in reply.rows]


# -- queues ---------------------------------------------------------------------------------------


def pause_queue(op: base.PauseQueue, now: float | None) -> Plan[None]:
    yield Statement("pause_queue", {"queue": op.queue, "paused": op.paused, "now": now})
    return None


# -- worker registry ------------------------------------------------------------------------------


def register_worker(op: base.RegisterWorker, now: float | None) -> Plan[None]:
    w = op.worker
    yield Statement("register_worker", {
        "id": w.id, "host": w.host, "pid": w.pid, "queues": list(w.queues),
        "concurrency": w.concurrency, "busy": w.busy, "started_at": float(w.started_at),
        "now": now,
    })
    return None


def unregister_worker(op: base.UnregisterWorker, now: float | None) -> Plan[None]:
    yield Statement("unregister_worker", {"id": op.worker_id})
    return None


# -- leadership and schedules ---------------------------------------------------------------------


def acquire_lock(op: base.AcquireLock, now: float | None) -> Plan[bool]:
    reply = yield Statement("acquire_lock", {
        "name": op.name, "holder": op.holder, "ttl": float(op.ttl_seconds), "now": now,
    })
    return bool(reply.rows) and reply.rows[0][0] == op.holder


def release_lock(op: base.ReleaseLock, now: float | None) -> Plan[None]:
    yield Statement("release_lock", {"name": op.name, "holder": op.holder})
    return None


def record_schedule_run(op: base.RecordScheduleRun, now: float | None) -> Plan[None]:
    run = op.run
    yield Statement("record_schedule_run", {
        "name": run.name, "last_due_at": float(run.last_due_at),
        "last_task_id": run.last_task_id, "now": now,
    })
    return None


def get_schedule_runs(op: base.GetScheduleRuns, now: float | None) -> Plan[list[base.ScheduleRun]]:
    names = list(op.names)
    if not names:
        return []
    reply = yield Statement("get_schedule_runs", {"names": names})
    found = {name: base.ScheduleRun(name, float(due), task) for name, due, task in reply.rows}
    return [found[name] for name in names if name in found]


# -- reads ----------------------------------------------------------------------------------------


def get_tasks(op: base.GetTasks, now: float | None) -> Plan[list[base.TaskRow]]:
    ids = list(op.ids)
    if not ids:
        return []
    reply = yield Statement("get_tasks", {"ids": ids})
    return [base.TaskRow(*row) for row in reply.rows]


def list_tasks(op: base.ListTasks, now: float | None) -> Plan[list[base.TaskRow]]:
    reply = yield Statement("list_tasks", {
        "queue": op.queue, "state": op.state, "limit": op.limit, "offset": op.offset,
    })
    return [base.TaskRow(*row) for row in reply.rows]


def queue_stats_read(op: base.QueueStatsRead, now: float | None) -> Plan[list[base.QueueCounts]]:
    reply = yield Statement("queue_stats_read", {})
    paused = yield Statement("queue_stats_read_paused", {})
    return base.queue_counts(reply.rows, [queue for (queue,) in paused.rows])


def list_workers(op: base.ListWorkers, now: float | None) -> Plan[list[base.WorkerRow]]:
    reply = yield Statement("list_workers", {})
    return [
        base.WorkerRow(wid, host, pid, tuple(queues), concurrency, busy, started, seen)
        for wid, host, pid, queues, concurrency, busy, started, seen in reply.rows
    ]


def next_due_at(op: base.NextDueAt, now: float | None) -> Plan[float | None]:
    queues = list(op.queues)
    if not queues:
        return None
    reply = yield Statement("next_due_at", {"queues": queues})
    return reply.rows[0][0] if reply.rows else None


def now(op: base.Now, now: float | None) -> Plan[float]:
    if now is not None:
        return now
    reply = yield Statement("now", {})
    return float(reply.rows[0][0])


ENQUEUE_COPY = Spec(enqueue_copy, transaction=True)
ENQUEUE_OWN = Spec(partial(enqueue, targeted=True))


def spec_for(op: base.Transition[Any]) -> Spec | None:
    """How ``op`` runs on the backend's own connections (a caller's connection, which may be
    in pipeline mode, always gets ``SPECS``)."""
    if type(op) is base.Enqueue:
        return ENQUEUE_COPY if copyable(op) else ENQUEUE_OWN
    return SPECS.get(type(op))


SPECS: dict[type[Any], Spec] = {
    base.Enqueue: Spec(enqueue),
    base.Claim: Spec(claim),
    base.Complete: Spec(complete),
    base.Fail: Spec(fail),
    base.Extend: Spec(extend),
    base.Release: Spec(release),
    base.RecoverExpired: Spec(recover_expired),
    base.Cancel: Spec(cancel, transaction=True),
    base.Requeue: Spec(_by_ids("requeue")),
    base.Purge: Spec(purge),
    base.DeleteTasks: Spec(_by_ids("delete_tasks")),
    base.Prune: Spec(prune, transaction=True),
    base.PauseQueue: Spec(pause_queue),
    base.RecordMetrics: Spec(record_metrics),
    base.MetricsRead: Spec(metrics_read, writes=False),
    base.RegisterWorker: Spec(register_worker),
    base.UnregisterWorker: Spec(unregister_worker),
    base.AcquireLock: Spec(acquire_lock),
    base.ReleaseLock: Spec(release_lock),
    base.RecordScheduleRun: Spec(record_schedule_run),
    base.GetScheduleRuns: Spec(get_schedule_runs, writes=False),
    base.GetTasks: Spec(get_tasks, writes=False),
    base.ListTasks: Spec(list_tasks, writes=False),
    base.QueueStatsRead: Spec(queue_stats_read, transaction=True, writes=False),
    base.ListWorkers: Spec(list_workers, writes=False),
    base.NextDueAt: Spec(next_due_at, writes=False),
    base.Now: Spec(now, writes=False),
}
