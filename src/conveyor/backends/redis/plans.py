"""Every transition described once, as data the two runners execute.

A plan is a generator: it yields the calls it needs (a script by name with its KEYS and ARGV, a
plain command, or independent calls to run side by side), receives each reply, and returns the
transition's result. The sync runner drives it with blocking calls, the async runner with
awaits; neither knows any transition, and no transition is written twice.

One server or a cluster: a queue's keys (or a partition's, see :mod:`partitions`) form one tag.
On one server a transition is one script over every tag it touches (atomic across queues). On
Redis Cluster a script may only touch one slot, so :meth:`Planner._spread` makes one call per
tag (an ``Each``) and the plan merges their replies: such a transition is atomic per tag. A
claim on a cluster visits its tags one after another until it has enough.

Transitions that only have task ids (GetTasks, Cancel, Requeue, DeleteTasks, lease
transitions without a usable hint) read the registry of tags, then look the ids up in every tag.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from conveyor.backends import base
from conveyor.backends.redis import keys
from conveyor.backends.redis.calls import Arg, Command, Each, Eval, Plan
from conveyor.backends.redis.partitions import Partitions
from conveyor.backends.redis.reads import Lead, ReadPlans
from conveyor.backends.redis.replies import claimed, text, texts
from conveyor.errors import BackendUnavailable

__all__ = ["Command", "Each", "Eval", "Plan", "Planner"]

T = TypeVar("T")
PRUNE_LIMIT = 10_000


class Planner(ReadPlans):
    """Builds the plan of each transition. ``clock`` is the test-only clock override."""

    def __init__(self, clock: Callable[[], float] | None, *, cluster: bool = False) -> None:
        self.clock = clock
        self.layout = keys.Layout(cluster)
        self.partitions = Partitions()
        self.wait_for_aof = False
        """Set by the startup check when the server has WAITAOF and AOF is on."""

    def plan(self, op: base.Transition[T]) -> Plan[T]:
        method = getattr(self, "_" + type(op).__name__, None)
        if method is None:
            raise NotImplementedError(f"{type(op).__name__} is not supported by RedisBackend")
        plan: Plan[T] = method(op)
        return plan

    def now_arg(self) -> str:
        """The clock override every script takes as ARGV[1] ('' = Redis TIME)."""
        return "" if self.clock is None else repr(float(self.clock()))

    # -- tasks -----------------------------------------------------------------------------------

    def _Enqueue(self, op: base.Enqueue) -> Plan[list[base.EnqueueOutcome]]:
        if not op.tasks:
            return []
        yield from self.partitions.refresh()
        placed = [self.partitions.tag_for(t) for t in op.tasks]
        tags = list(dict.fromkeys(placed))
        if self.layout.cluster:
            yield Command(("SADD", keys.QUEUES, *tags))

        def args(call_tags: list[str]) -> list[Arg]:
            group = {tag: i + 1 for i, tag in enumerate(call_tags)}
            argv: list[Arg] = [self.now_arg(), len(call_tags), *call_tags]
            for t, tag in zip(op.tasks, placed, strict=True):
                if tag in group:
                    argv += [
                        group[tag], keys.encode_id(t.id), t.name, t.payload, t.priority,
                        t.max_retries, float(t.delay_seconds),
                        "" if t.eta is None else float(t.eta), t.idempotency_key or "",
                        "" if t.timeout_seconds is None else float(t.timeout_seconds),
                        float(t.result_ttl_seconds),
                    ]
            return argv

        layout = self.layout
        replies = yield from self._spread(
            "enqueue", tags, [layout.sequence, layout.idempotency, layout.registry], args,
            trail=[keys.totals, keys.minutes])
        if self.wait_for_aof and not layout.cluster:
            local, _ = yield Command(("WAITAOF", 1, 0, 0))
            if local < 1:
                raise BackendUnavailable("the enqueue was not written to the AOF")
        pairs: dict[str, Iterator[Any]] = {}
        for call_tags, reply in replies:
            it = iter(reply)
            pairs.update((tag, it) for tag in call_tags)
        return [
            base.EnqueueOutcome(keys.decode_id(next(pairs[tag])), created=bool(next(pairs[tag])))
            for tag in placed
        ]

    def _Claim(self, op: base.Claim) -> Plan[list[base.ClaimedTask]]:
        if not op.queues or op.limit <= 0:
            return []
        yield from self.partitions.refresh()
        tags = [tag for queue in op.queues for tag in self.partitions.tags_to_claim(queue)]
        if not self.layout.cluster:
            reply = yield Eval("claim", [keys.SEQUENCE, *keys.groups(tags),
                                         *map(keys.paused, tags)], [
                self.now_arg(), op.worker_id, op.limit, float(op.lease_seconds), op.oldest_first,
                len(tags), *map(keys.queue_of, tags), os.urandom(8).hex(), op.min_priority,
                *(keys.offer(tag, op.worker_id, op.lease_seconds) for tag in tags),
            ])
            got = _claimed_all(reply)
        else:
            got = yield from self._claim_per_tag(op, tags)
        got.sort(key=lambda t: -t.priority)
        return got

    def _claim_per_tag(self, op: base.Claim, tags: list[str]) -> Plan[list[base.ClaimedTask]]:
        """On a cluster, queue after queue (the order is the worker's): the limit left (and the
        oldest-first share) split over the queue's partitions, claimed side by side; then,
        while short, the partitions that may hold more, one after another (with a small limit
        most partitions get no share in the first round)."""
        got: list[base.ClaimedTask] = []
        by_queue: dict[str, list[str]] = {}
        for tag in tags:
            by_queue.setdefault(keys.queue_of(tag), []).append(tag)
        for parts in by_queue.values():
            limit, n = op.limit - len(got), len(parts)
            if limit <= 0:
                break
            share = max(0, op.oldest_first - len(got))
            quota = [limit // n + (i < limit % n) for i in range(n)]
            oldest = [min(q, share // n + (i < share % n)) for i, q in enumerate(quota)]
            first = [i for i in range(n) if quota[i] > 0]
            replies = yield Each(tuple(
                self._claim_call(op, parts[i], quota[i], oldest[i]) for i in first))
            exhausted = set()
            for i, reply in zip(first, replies, strict=True):
                batch = _claimed_all(reply)
                got += batch
                if len(batch) < quota[i]:
                    exhausted.add(i)
            for i in range(n):
                if len(got) >= op.limit:
                    break
                if i not in exhausted:
                    reply = yield self._claim_call(op, parts[i], op.limit - len(got), 0)
                    got += _claimed_all(reply)
        return got

    def _claim_call(self, op: base.Claim, tag: str, limit: int, oldest_first: int) -> Eval:
        # The salt names the partition, so the lease transitions find the task's tag from its
        # token alone (see _lease_tags).
        salt = f"{keys.partition_of(tag)}.{os.urandom(8).hex()}"
        return Eval("claim", [self.layout.sequence(tag), *keys.groups([tag]), keys.paused(tag)], [
            self.now_arg(), op.worker_id, limit, float(op.lease_seconds), oldest_first, 1,
            keys.queue_of(tag), salt, op.min_priority,
        ])

    def _Complete(self, op: base.Complete) -> Plan[list[str]]:
        return (yield from self._guarded(
            "complete", op.completions,
            lambda c: [c.lease_token, "0" if c.result is None else "1", c.result or b"",
                       _seconds(c.started_at)],
        ))

    def _Fail(self, op: base.Fail) -> Plan[list[str]]:
        return (yield from self._guarded(
            "fail", op.failures,
            lambda f: [f.lease_token, f.error,
                       "" if f.retry_in_seconds is None else float(f.retry_in_seconds),
                       f.dead_reason or "", int(f.worker_lost), _seconds(f.started_at)],
            leading=[base.ATTEMPT_ERRORS_KEPT, base.ATTEMPT_ERROR_CHARS],
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
        """A lease-guarded transition. Each item is sent to the tags that may hold it (one, when
        the worker's queue hint or the token names it), and is lost only if no tag took it."""
        if not items:
            return []
        # A lease keeper or a CLI may never have enqueued or claimed: learn the counts first.
        yield from self.partitions.refresh()
        registered: list[str] = []
        if any(i.queue is None for i in items):
            registered = yield from self._registered()
        of_queue: dict[str | None, list[str]] = {None: registered}
        candidates = []
        for item in items:
            where = of_queue.get(item.queue)
            if where is None:
                where = of_queue[item.queue] = self.partitions.tags(item.queue)
            if item.queue is not None and self.layout.cluster:
                where = self._token_tag(item) or where
            candidates.append(where)
        tags = list(dict.fromkeys(tag for where in of_queue.values() for tag in where))
        if not tags:
            return [item.id for item in items]

        def args(call_tags: list[str]) -> list[Arg]:
            group = {tag: n + 1 for n, tag in enumerate(call_tags)}
            every = len(call_tags) == len(tags)
            argv: list[Arg] = [self.now_arg(), *leading]
            for item, where in zip(items, candidates, strict=True):
                if every or any(tag in group for tag in where):
                    argv += [group[where[0]] if len(where) == 1 else 0,
                             keys.encode_id(item.id), *fields(item)]
            return argv

        replies = yield from self._spread(script, tags, [], args)
        if len(replies) == 1:  # one call had every item that has a place to look
            unplaced = [item.id for item, where in zip(items, candidates, strict=True)
                        if not where]
            return [keys.decode_id(i) for i in replies[0][1]] + unplaced
        lost_in: dict[str, int] = {}
        for _, lost in replies:
            for stored in lost:
                task_id = keys.decode_id(stored)
                lost_in[task_id] = lost_in.get(task_id, 0) + 1
        sent_to = [sum(1 for call_tags, _ in replies if any(t in where for t in call_tags))
                   for where in candidates]
        return [item.id for item, calls in zip(items, sent_to, strict=True)
                if calls == 0 or lost_in.get(item.id, 0) >= calls]

    @staticmethod
    def _token_tag(item: Any) -> list[str] | None:
        """The partition a cluster claim wrote into the lease token's salt, if it did."""
        salt = item.lease_token.split(":", 1)[0]
        partition, dot, _ = salt.partition(".")
        if dot and partition.isdigit():
            return [keys.partition_tag(item.queue, int(partition))]
        return None

    def _RecoverExpired(self, op: base.RecoverExpired) -> Plan[base.Recovered]:
        tags = yield from self._registered()
        if not tags:
            return base.Recovered(0, 0)
        replies = yield from self._spread(
            "recover_expired", tags, [self.layout.sequence],
            lambda _: [self.now_arg(), op.max_worker_lost, op.limit],
        )
        per_queue: dict[str, tuple[int, int]] = {}
        for call_tags, reply in replies:
            for i, tag in enumerate(call_tags):
                requeued, dead = int(reply[2 + 2 * i]), int(reply[3 + 2 * i])
                if requeued or dead:
                    was = per_queue.get(keys.queue_of(tag), (0, 0))
                    per_queue[keys.queue_of(tag)] = (was[0] + requeued, was[1] + dead)
        return base.Recovered(requeued=sum(int(r[0]) for _, r in replies),
                              dead=sum(int(r[1]) for _, r in replies), per_queue=per_queue)

    def _Cancel(self, op: base.Cancel) -> Plan[list[str]]:
        return (yield from self._by_ids("cancel", op.ids, [], metrics=True))

    def _Requeue(self, op: base.Requeue) -> Plan[list[str]]:
        return (yield from self._by_ids("requeue", op.ids, [self.layout.sequence]))

    def _DeleteTasks(self, op: base.DeleteTasks) -> Plan[list[str]]:
        return (yield from self._by_ids("delete_tasks", op.ids, [self.layout.idempotency]))

    def _by_ids(
        self, script: str, ids: Sequence[str], lead: list[Lead], metrics: bool = False
    ) -> Plan[list[str]]:
        tags = yield from self._registered()
        if not ids or not tags:
            return []
        args: list[Arg] = [self.now_arg()]
        for task_id in ids:
            args += [0, keys.encode_id(task_id)]
        trail = [keys.totals, keys.minutes] if metrics else []
        replies = yield from self._spread(script, tags, lead, lambda _: args, trail=trail)
        done = {keys.decode_id(i) for _, reply in replies for i in reply}
        return [i for i in dict.fromkeys(ids) if i in done]

    def _Purge(self, op: base.Purge) -> Plan[int]:
        tags = yield from self._registered(op.queue)
        if not tags:
            return 0
        replies = yield from self._spread("purge", tags, [self.layout.idempotency],
                                          lambda _: [op.state])
        return sum(int(r) for _, r in replies)

    def _Prune(self, op: base.Prune) -> Plan[int]:
        tags = yield from self._registered()
        argv: list[Arg] = [self.now_arg(), float(op.worker_silence_seconds), PRUNE_LIMIT]
        if not self.layout.cluster:
            deleted = int((yield Eval(
                "prune", [keys.IDEMPOTENCY, keys.WORKERS, *keys.groups(tags)], argv)))
        else:
            # On a cluster: the workers alone (no group, so KEYS[1] is never read), then each
            # tag with a never-written key of its slot in the workers' place.
            yield Eval("prune", [keys.WORKERS, keys.WORKERS], argv)
            deleted = 0
            if tags:
                layout = self.layout
                replies = yield from self._spread(
                    "prune", tags, [layout.idempotency, layout.absent], lambda _: argv)
                deleted = sum(int(r) for _, r in replies)
        if tags:  # recording nothing prunes each tag's old per-minute fields
            yield from self._spread(
                "record_metrics", tags, [],
                lambda _: [self.now_arg(), float(op.metrics_retention_seconds)],
                trail=[keys.totals, keys.minutes], grouped=False)
        return deleted

    # -- metrics ---------------------------------------------------------------------------------

    def _RecordMetrics(self, op: base.RecordMetrics) -> Plan[None]:
        """Counts go to the queue's first tag (its partition 0); reads sum every tag."""
        if not op.counts:
            return
        tags = list(dict.fromkeys(c.queue for c in op.counts))

        def args(call_tags: list[str]) -> list[Arg]:
            group = {tag: i + 1 for i, tag in enumerate(call_tags)}
            argv: list[Arg] = [self.now_arg(), float(op.retention_seconds)]
            for c in op.counts:
                if c.queue in group:
                    argv += [group[c.queue], c.minute, c.name, repr(float(c.value))]
            return argv

        yield from self._spread("record_metrics", tags, [], args,
                                trail=[keys.totals, keys.minutes], grouped=False)

    def _MetricsRead(self, op: base.MetricsRead) -> Plan[list[base.MetricCount]]:
        tags = yield from self._registered()
        if not tags:
            return []
        replies = yield from self._spread(
            "metrics_read", tags, [], lambda _: [op.since_minute, op.until_minute],
            trail=[keys.totals, keys.minutes], grouped=False)
        summed: dict[tuple[str, int, str], float] = {}
        for call_tags, reply in replies:
            for tag, (totals, minutes) in zip(call_tags, reply, strict=True):
                queue = keys.queue_of(tag)
                for i in range(0, len(totals), 2):
                    at = (queue, 0, totals[i].decode())
                    summed[at] = summed.get(at, 0.0) + float(totals[i + 1])
                for i in range(0, len(minutes), 2):
                    minute, _, name = minutes[i].decode().partition(":")
                    at = (queue, int(minute), name)
                    summed[at] = summed.get(at, 0.0) + float(minutes[i + 1])
        return [base.MetricCount(q, minute, name, value)
                for (q, minute, name), value in summed.items()]

    # -- queues ----------------------------------------------------------------------------------

    def _PauseQueue(self, op: base.PauseQueue) -> Plan[None]:
        """The flag goes on every partition of the queue (each claim reads its own tag's)."""
        keys.check_queue(op.queue)
        yield from self.partitions.refresh()
        tags = self.partitions.tags(op.queue)
        layout = self.layout
        if layout.cluster:
            yield Command(("SADD", keys.QUEUES, *tags))
        calls = tuple(
            Eval("pause_queue", [keys.paused(tag), keys.tag_keys(tag).signal,
                                 layout.registry(tag), keys.tag_keys(tag).idle],
                 [tag, int(op.paused)])
            for tag in tags
        )
        yield calls[0] if len(calls) == 1 else Each(calls)

    # -- workers ---------------------------------------------------------------------------------

    def _RegisterWorker(self, op: base.RegisterWorker) -> Plan[None]:
        w = op.worker
        yield Eval("register_worker", [keys.WORKERS], [
            self.now_arg(), w.id, w.host, w.pid, w.concurrency, w.busy, float(w.started_at),
            *w.queues,
        ])

    def _UnregisterWorker(self, op: base.UnregisterWorker) -> Plan[None]:
        yield Eval("unregister_worker", [keys.WORKERS], [op.worker_id])

    def _ListWorkers(self, op: base.ListWorkers) -> Plan[list[base.WorkerRow]]:
        reply = yield Eval("list_workers", [keys.WORKERS], [])
        workers = [
            base.WorkerRow(
                reply[i].decode(), reply[i + 1].decode(), int(reply[i + 2]),
                tuple(texts(reply[i + 3])), int(reply[i + 4]), int(reply[i + 5]),
                float(reply[i + 6]), float(reply[i + 7]),
            )
            for i in range(0, len(reply), 8)
        ]
        return sorted(workers, key=lambda w: w.started_at)

    # -- leadership and schedules ----------------------------------------------------------------

    def _AcquireLock(self, op: base.AcquireLock) -> Plan[bool]:
        reply = yield Eval("acquire_lock", [keys.lock(op.name)],
                           [self.now_arg(), op.holder, float(op.ttl_seconds)])
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
            base.ScheduleRun(reply[i].decode(), float(reply[i + 1]), text(reply[i + 2]) or None)
            for i in range(0, len(reply), 3)
        ]

    def _Now(self, op: base.Now) -> Plan[float]:
        reply = yield Eval("now", [], [self.now_arg()])
        return float(reply)


def _claimed_all(reply: Sequence[Any]) -> list[base.ClaimedTask]:
    return [claimed(reply[i:i + 15]) for i in range(0, len(reply), 15)]


def _seconds(value: float | None) -> Arg:
    """An optional time as a script argument: '' for None."""
    return "" if value is None else float(value)
