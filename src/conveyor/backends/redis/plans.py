"""Every transition described once, as data the two runners execute.

A plan is a generator: it yields the calls it needs (a script by name with its KEYS and ARGV,
or a plain command), receives each reply, and returns the transition's result. The sync runner
drives it with blocking calls, the async runner with awaits; neither knows any transition, and
no transition is written twice. Most plans are one script call. Those that only have task ids
(GetTasks, Cancel, Requeue, and lease transitions without a queue hint) first read the queue
registry, then run one script over every queue's keys, which looks the ids up atomically.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from conveyor.backends import base
from conveyor.backends.redis import keys
from conveyor.errors import BackendUnavailable

T = TypeVar("T")
Arg = str | bytes | int | float


@dataclass(frozen=True, slots=True)
class Eval:
    script: str
    keys: Sequence[str]
    args: Sequence[Arg]


@dataclass(frozen=True, slots=True)
class Command:
    args: tuple[Arg, ...]


Plan = Generator[Eval | Command, Any, T]
LIST_PAGE = 1000
"""Tasks a ListTasks page reads in one script call: bounds the time Redis is busy with a read."""
PRUNE_LIMIT = 10_000


class Planner:
    """Builds the plan of each transition. ``clock`` is the test-only clock override."""

    def __init__(self, clock: Callable[[], float] | None) -> None:
        self.clock = clock
        self.wait_for_aof = False
        """Set by the startup check when the server has WAITAOF and AOF is on."""

    def plan(self, op: base.Transition[T]) -> Plan[T]:
        method = getattr(self, "_" + type(op).__name__, None)
        if method is None:
            raise NotImplementedError(f"{type(op).__name__} is not supported by RedisBackend")
        plan: Plan[T] = method(op)
        return plan

    def _now(self) -> str:
        return "" if self.clock is None else repr(float(self.clock()))

    # -- tasks -----------------------------------------------------------------------------------

    def _Enqueue(self, op: base.Enqueue) -> Plan[list[base.EnqueueOutcome]]:
        if not op.tasks:
            return []
        queues = list(dict.fromkeys(t.queue for t in op.tasks))
        group = {q: i + 1 for i, q in enumerate(queues)}
        args: list[Arg] = [self._now(), len(queues), *queues]
        for t in op.tasks:
            args += [
                group[t.queue], keys.encode_id(t.id), t.name, t.payload, t.priority,
                t.max_retries, float(t.delay_seconds), "" if t.eta is None else float(t.eta),
                t.idempotency_key or "",
                "" if t.timeout_seconds is None else float(t.timeout_seconds),
                float(t.result_ttl_seconds),
            ]
        reply = yield Eval("enqueue", [keys.SEQUENCE, keys.IDEMPOTENCY, keys.QUEUES,
                                       *keys.groups(queues), *keys.metrics(queues)], args)
        if self.wait_for_aof:
            local, _ = yield Command(("WAITAOF", 1, 0, 0))
            if local < 1:
                raise BackendUnavailable("the enqueue was not written to the AOF")
        return [
            base.EnqueueOutcome(keys.decode_id(reply[i]), created=bool(reply[i + 1]))
            for i in range(0, len(reply), 2)
        ]

    def _Claim(self, op: base.Claim) -> Plan[list[base.ClaimedTask]]:
        if not op.queues or op.limit <= 0:
            return []
        queues = list(op.queues)
        args: list[Arg] = [
            self._now(), op.worker_id, op.limit, float(op.lease_seconds), op.oldest_first,
            len(queues), *queues, os.urandom(8).hex(),
        ]
        reply = yield Eval("claim", [keys.SEQUENCE, *keys.groups(queues),
                                     *(keys.paused(q) for q in queues)], args)
        claimed = [_claimed(reply[i:i + 15]) for i in range(0, len(reply), 15)]
        claimed.sort(key=lambda t: -t.priority)
        return claimed

    def _Complete(self, op: base.Complete) -> Plan[list[str]]:
        return (yield from self._guarded(
            "complete", op.completions,
            lambda c: [c.lease_token, "0" if c.result is None else "1", c.result or b""],
        ))

    def _Fail(self, op: base.Fail) -> Plan[list[str]]:
        return (yield from self._guarded(
            "fail", op.failures,
            lambda f: [f.lease_token, f.error,
                       "" if f.retry_in_seconds is None else float(f.retry_in_seconds),
                       f.dead_reason or "", int(f.worker_lost)],
        ))

    def _Extend(self, op: base.Extend) -> Plan[list[str]]:
        return (yield from self._guarded(
            "extend", op.leases, lambda lease: [lease.lease_token],
            leading=[float(op.lease_seconds)],
        ))

    def _Release(self, op: base.Release) -> Plan[list[str]]:
        return (yield from self._guarded("release", op.leases, lambda lease: [lease.lease_token]))

    def _guarded(
        self,
        script: str,
        items: Sequence[Any],
        fields: Callable[[Any], list[Arg]],
        leading: Sequence[Arg] = (),
    ) -> Plan[list[str]]:
        """A lease-guarded transition: each item names its queue (the worker's hint) or, without
        one, is looked up in every queue by the script."""
        if not items:
            return []
        queues = list(dict.fromkeys(i.queue for i in items if i.queue is not None))
        if any(i.queue is None for i in items):
            registered = yield Command(("SMEMBERS", keys.QUEUES))
            queues += sorted(q for q in _texts(registered) if q not in queues)
        group = {q: n + 1 for n, q in enumerate(queues)}
        args: list[Arg] = [self._now(), *leading]
        for item in items:
            args += [group.get(item.queue, 0), keys.encode_id(item.id), *fields(item)]
        if not queues:
            return [item.id for item in items]
        lost = yield Eval(script, keys.groups(queues), args)
        return [keys.decode_id(i) for i in lost]

    def _RecoverExpired(self, op: base.RecoverExpired) -> Plan[base.Recovered]:
        queues = yield from self._registered()
        if not queues:
            return base.Recovered(0, 0)
        reply = yield Eval(
            "recover_expired", [keys.SEQUENCE, *keys.groups(queues)],
            [self._now(), op.max_worker_lost, op.limit],
        )
        per_queue = {
            queue: (int(reply[2 + 2 * i]), int(reply[3 + 2 * i]))
            for i, queue in enumerate(queues) if int(reply[2 + 2 * i]) or int(reply[3 + 2 * i])
        }
        return base.Recovered(requeued=int(reply[0]), dead=int(reply[1]), per_queue=per_queue)

    def _Cancel(self, op: base.Cancel) -> Plan[list[str]]:
        return (yield from self._by_ids("cancel", op.ids, [], metrics=True))

    def _Requeue(self, op: base.Requeue) -> Plan[list[str]]:
        return (yield from self._by_ids("requeue", op.ids, [keys.SEQUENCE]))

    def _by_ids(
        self, script: str, ids: Sequence[str], leading: list[str], metrics: bool = False
    ) -> Plan[list[str]]:
        queues = yield from self._registered()
        if not ids or not queues:
            return []
        args: list[Arg] = [self._now()]
        for task_id in ids:
            args += [0, keys.encode_id(task_id)]
        trailing = keys.metrics(queues) if metrics else []
        done = yield Eval(script, [*leading, *keys.groups(queues), *trailing], args)
        return [keys.decode_id(i) for i in done]

    def _Purge(self, op: base.Purge) -> Plan[int]:
        queues = [op.queue] if op.queue is not None else (yield from self._registered())
        if not queues:
            return 0
        deleted = yield Eval("purge", [keys.IDEMPOTENCY, *keys.groups(queues)], [op.state])
        return int(deleted)

    def _Prune(self, op: base.Prune) -> Plan[int]:
        queues = yield from self._registered()
        deleted = yield Eval(
            "prune", [keys.IDEMPOTENCY, keys.WORKERS, *keys.groups(queues)],
            [self._now(), float(op.worker_silence_seconds), PRUNE_LIMIT],
        )
        if queues:  # recording nothing prunes each queue's old per-minute fields
            yield Eval("record_metrics", keys.metrics(queues),
                       [self._now(), float(op.metrics_retention_seconds)])
        return int(deleted)

    # -- metrics ---------------------------------------------------------------------------------

    def _RecordMetrics(self, op: base.RecordMetrics) -> Plan[None]:
        if not op.counts:
            return
        queues = list(dict.fromkeys(c.queue for c in op.counts))
        group = {q: i + 1 for i, q in enumerate(queues)}
        args: list[Arg] = [self._now(), float(op.retention_seconds)]
        for c in op.counts:
            args += [group[c.queue], c.minute, c.name, repr(float(c.value))]
        yield Eval("record_metrics", keys.metrics(queues), args)

    def _MetricsRead(self, op: base.MetricsRead) -> Plan[list[base.MetricCount]]:
        queues = yield from self._registered()
        if not queues:
            return []
        reply = yield Eval("metrics_read", keys.metrics(queues),
                           [op.since_minute, op.until_minute])
        found = []
        for queue, (totals, minutes) in zip(queues, reply, strict=True):
            for i in range(0, len(totals), 2):
                found.append(base.MetricCount(queue, 0, totals[i].decode(), float(totals[i + 1])))
            for i in range(0, len(minutes), 2):
                minute, _, name = minutes[i].decode().partition(":")
                found.append(base.MetricCount(queue, int(minute), name, float(minutes[i + 1])))
        return found

    def _registered(self) -> Plan[list[str]]:
        registered = yield Command(("SMEMBERS", keys.QUEUES))
        return sorted(_texts(registered))

    # -- queues ----------------------------------------------------------------------------------

    def _PauseQueue(self, op: base.PauseQueue) -> Plan[None]:
        yield Eval("pause_queue", [keys.paused(op.queue), keys.queue_keys(op.queue).signal,
                                   keys.QUEUES],
                   [op.queue, int(op.paused)])

    # -- workers ---------------------------------------------------------------------------------

    def _RegisterWorker(self, op: base.RegisterWorker) -> Plan[None]:
        w = op.worker
        yield Eval("register_worker", [keys.WORKERS], [
            self._now(), w.id, w.host, w.pid, w.concurrency, w.busy, float(w.started_at),
            *w.queues,
        ])

    def _UnregisterWorker(self, op: base.UnregisterWorker) -> Plan[None]:
        yield Eval("unregister_worker", [keys.WORKERS], [op.worker_id])

    def _ListWorkers(self, op: base.ListWorkers) -> Plan[list[base.WorkerRow]]:
        reply = yield Eval("list_workers", [keys.WORKERS], [])
        workers = [
            base.WorkerRow(
                reply[i].decode(), reply[i + 1].decode(), int(reply[i + 2]),
                tuple(_texts(reply[i + 3])), int(reply[i + 4]), int(reply[i + 5]),
                float(reply[i + 6]), float(reply[i + 7]),
            )
            for i in range(0, len(reply), 8)
        ]
        return sorted(workers, key=lambda w: w.started_at)

    # -- leadership and schedules ----------------------------------------------------------------

    def _AcquireLock(self, op: base.AcquireLock) -> Plan[bool]:
        reply = yield Eval("acquire_lock", [keys.lock(op.name)],
                           [self._now(), op.holder, float(op.ttl_seconds)])
        return bool(reply)

    def _ReleaseLock(self, op: base.ReleaseLock) -> Plan[None]:
        yield Eval("release_lock", [keys.lock(op.name)], [op.holder])

    def _RecordScheduleRun(self, op: base.RecordScheduleRun) -> Plan[None]:
        run = op.run
        yield Eval("record_schedule_run", [keys.SCHEDULES],
                   [run.name, float(run.last_due_at), run.last_task_id or ""])

    def _GetScheduleRuns(self, op: base.GetScheduleRuns) -> Plan[list[base.ScheduleRun]]:
        if not op.names:
            return []
        reply = yield Eval("get_schedule_runs", [keys.SCHEDULES], list(op.names))
        return [
            base.ScheduleRun(reply[i].decode(), float(reply[i + 1]), _text(reply[i + 2]) or None)
            for i in range(0, len(reply), 3)
        ]

    # -- reads -----------------------------------------------------------------------------------

    def _GetTasks(self, op: base.GetTasks) -> Plan[list[base.TaskRow]]:
        if not op.ids:
            return []
        queues = yield from self._registered()
        if not queues:
            return []
        reply = yield Eval("get_tasks", keys.groups(queues),
                           [*queues, *(keys.encode_id(i) for i in op.ids)])
        return [_task_row(r)[1] for r in reply]

    def _ListTasks(self, op: base.ListTasks) -> Plan[list[base.TaskRow]]:
        queues = [op.queue] if op.queue is not None else (yield from self._registered())
        wanted = op.offset + op.limit
        best: list[tuple[int, base.TaskRow]] = []
        for queue in queues:
            cursor: bytes | str = "0"
            while True:
                cursor, rows = yield Eval(
                    "list_tasks", list(keys.queue_keys(queue)),
                    [queue, op.state or "", cursor, LIST_PAGE],
                )
                best = heapq.nsmallest(wanted, best + [_task_row(r) for r in rows],
                                       key=lambda entry: entry[0])
                if cursor in (b"0", "0"):
                    break
        return [row for _, row in best[op.offset:wanted]]

    def _QueueStatsRead(self, op: base.QueueStatsRead) -> Plan[list[base.QueueCounts]]:
        queues = yield from self._registered()
        if not queues:
            return []
        reply = yield Eval("queue_stats_read",
                           [*keys.groups(queues), *(keys.paused(q) for q in queues)], [])
        stats = []
        for queue, counts in zip(queues, reply, strict=True):
            by_state = {s: int(n) for s, n in zip(_STATS_ORDER, counts[:7], strict=True) if n}
            paused = bool(counts[8])
            if by_state or paused:
                oldest = None if counts[7] is None else float(counts[7])
                stats.append(base.QueueCounts(queue, by_state, oldest, paused))
        return stats

    def _NextDueAt(self, op: base.NextDueAt) -> Plan[float | None]:
        if not op.queues:
            return None
        reply = yield Eval("next_due_at", keys.groups(list(op.queues)), [])
        return None if reply is None else float(reply)

    def _Now(self, op: base.Now) -> Plan[float]:
        reply = yield Eval("now", [], [self._now()])
        return float(reply)


_STATS_ORDER = ("PENDING", "SCHEDULED", "FAILED", "RUNNING", "DONE", "CANCELLED", "DEAD")


def _texts(values: Sequence[bytes]) -> list[str]:
    return [v.decode() for v in values]


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _float(value: bytes | None) -> float | None:
    return None if value is None else float(value)


def _claimed(r: Sequence[Any]) -> base.ClaimedTask:
    return base.ClaimedTask(
        id=keys.decode_id(r[0]), queue=r[1].decode(), name=r[2].decode(), payload=r[3],
        priority=int(r[4]), attempts=int(r[5]), max_retries=int(r[6]), worker_lost=int(r[7]),
        lease_token=r[8].decode(), lease_expires_at=float(r[9]), created_at=float(r[10]),
        scheduled_at=float(r[11]), idempotency_key=_text(r[12]), timeout_seconds=_float(r[13]),
        result_ttl_seconds=float(r[14]),
    )


def _task_row(r: Sequence[Any]) -> tuple[int, base.TaskRow]:
    """(sequence, row) from a script's row (see ``row`` in _record.lua)."""
    return int(r[19]), base.TaskRow(
        id=keys.decode_id(r[0]), queue=r[1].decode(), name=r[2].decode(), payload=r[3],
        priority=int(r[4]), state=r[5].decode(), attempts=int(r[6]), max_retries=int(r[7]),
        worker_lost=int(r[8]), created_at=float(r[9]), scheduled_at=_float(r[10]),
        started_at=_float(r[11]), completed_at=_float(r[12]), worker_id=_text(r[13]),
        error=_text(r[14]), result=r[15], idempotency_key=_text(r[16]),
        dead_reason=_text(r[17]), timeout_seconds=_float(r[18]),
    )
