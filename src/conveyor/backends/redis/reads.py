"""The reads, and the two helpers every plan shares: the registry of tags and ``_spread``.

A base of :class:`plans.Planner`, split off to keep each module one screenful of concerns; the
reads never change state, so on a cluster their per-tag calls need no atomicity across tags.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from typing import Any

from conveyor.backends import base
from conveyor.backends.redis import keys
from conveyor.backends.redis.calls import Arg, Command, Each, Eval, Plan
from conveyor.backends.redis.partitions import Partitions
from conveyor.backends.redis.replies import STATS_ORDER, task_row, texts

LIST_PAGE = 1000
"""Tasks a ListTasks page reads in one script call: bounds the time Redis is busy with a read."""
Lead = Callable[[str], str]
"""A key that precedes the groups in a script's KEYS, given the tag of the call."""


class ReadPlans:
    layout: keys.Layout
    partitions: Partitions

    def _spread(
        self, script: str, tags: list[str], lead: Sequence[Lead],
        args: Callable[[list[str]], list[Arg]], trail: Sequence[Lead] = (),
        grouped: bool = True,
    ) -> Plan[list[tuple[list[str], Any]]]:
        """Run ``script`` over ``tags``: one call on one server, one per tag on a cluster.
        KEYS: the ``lead`` keys (of the first tag), the groups of the call's tags (unless not
        ``grouped``), then the ``trail`` keys of each tag, tag after tag. ``args(tags_of_the_
        call)`` builds the ARGV of a call. Returns (tags, reply) per call."""

        def call(call_tags: list[str]) -> Eval:
            return Eval(script, [
                *(key(call_tags[0]) for key in lead),
                *(keys.groups(call_tags) if grouped else ()),
                *(key(tag) for tag in call_tags for key in trail),
            ], args(call_tags))

        if not self.layout.cluster or len(tags) == 1:
            reply = yield call(tags)
            return [(tags, reply)]
        replies = yield Each(tuple(call([tag]) for tag in tags))
        return [([tag], reply) for tag, reply in zip(tags, replies, strict=True)]

    def _registered(self, queue: str | None = None) -> Plan[list[str]]:
        """The tags ever enqueued to (of ``queue`` only, when given), in a stable order."""
        registered = yield Command(("SMEMBERS", keys.QUEUES))
        tags = sorted(texts(registered))
        if queue is not None:
            tags = [t for t in tags if keys.queue_of(t) == queue] or [queue]
        return tags

    # -- reads -----------------------------------------------------------------------------------

    def _GetTasks(self, op: base.GetTasks) -> Plan[list[base.TaskRow]]:
        """With a queue hint, that queue's tags first (no registry read); then every tag for
        the ids still missing."""
        rows: dict[str, base.TaskRow] = {}
        missing = list(dict.fromkeys(op.ids))
        if op.queue is not None and missing:
            rows.update((yield from self._get_rows(self.partitions.tags(op.queue), missing)))
            missing = [i for i in missing if i not in rows]
        if missing:
            tags = yield from self._registered()
            if tags:
                rows.update((yield from self._get_rows(tags, missing)))
        return [rows[i] for i in dict.fromkeys(op.ids) if i in rows]

    def _get_rows(self, tags: list[str], ids: list[str]) -> Plan[dict[str, base.TaskRow]]:
        stored = [keys.encode_id(i) for i in ids]
        replies = yield from self._spread(
            "get_tasks", tags, [], lambda call: [*map(keys.queue_of, call), *stored])
        return {row.id: row for _, reply in replies for _, row in map(task_row, reply)}

    def _ListTasks(self, op: base.ListTasks) -> Plan[list[base.TaskRow]]:
        tags = yield from self._registered(op.queue)
        wanted = op.offset + op.limit
        best: list[tuple[int, base.TaskRow]] = []
        # Enqueue order: the sequence on one server; on a cluster each tag counts its own, so
        # tasks of different tags are ordered by creation time (their nodes' clocks) first.
        order: Callable[[tuple[int, base.TaskRow]], Any] = (
            (lambda entry: (entry[1].created_at, entry[0])) if self.layout.cluster
            else (lambda entry: entry[0]))
        for tag in tags:
            cursor: bytes | str = "0"
            while True:
                cursor, rows = yield Eval(
                    "list_tasks", list(keys.tag_keys(tag)),
                    [keys.queue_of(tag), op.state or "", cursor, LIST_PAGE],
                )
                best = heapq.nsmallest(wanted, best + [task_row(r) for r in rows], key=order)
                if cursor in (b"0", "0"):
                    break
        return [row for _, row in best[op.offset:wanted]]

    def _QueueStatsRead(self, op: base.QueueStatsRead) -> Plan[list[base.QueueCounts]]:
        tags = yield from self._registered()
        if not tags:
            return []
        replies = yield from self._spread("queue_stats_read", tags, [], lambda _: [],
                                          trail=[keys.paused])
        counts: dict[str, dict[str, int]] = {}
        oldest: dict[str, float] = {}
        paused: set[str] = set()
        for call_tags, reply in replies:
            for tag, row in zip(call_tags, reply, strict=True):
                queue = keys.queue_of(tag)
                by_state = counts.setdefault(queue, {})
                for state, n in zip(STATS_ORDER, row[:7], strict=True):
                    if n:
                        by_state[state] = by_state.get(state, 0) + int(n)
                if row[7] is not None:
                    oldest[queue] = min(float(row[7]), oldest.get(queue, float("inf")))
                if int(row[8]):
                    paused.add(queue)
        return [base.QueueCounts(q, c, oldest.get(q), q in paused)
                for q, c in sorted(counts.items()) if c or q in paused]

    def _NextDueAt(self, op: base.NextDueAt) -> Plan[float | None]:
        if not op.queues:
            return None
        yield from self.partitions.refresh()
        tags = [tag for queue in op.queues for tag in self.partitions.tags(queue)]
        replies = yield from self._spread("next_due_at", tags, [], lambda _: [])
        due = [float(r) for _, r in replies if r is not None]
        return min(due) if due else None

