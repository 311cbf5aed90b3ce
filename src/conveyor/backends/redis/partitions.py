"""Queue partitions: how many a queue has, where a new task goes, in which order a claim visits
them.

A queue declared with N partitions (``app.declare_queue("hot", partitions=8)``) is N tags
(``hot``, ``hot#1`` ... ``hot#7``, see :mod:`keys`), each a full set of the queue's keys in its
own slot, so on Redis Cluster they spread over the shards. The same code runs on one server,
where the partitions simply share it.

Who knows the count: the declaring process at once, and every other client through the
``conveyor:partitions`` hash, which a declaration raises (never lowers) and every client re-reads
at most every ``REFRESH_SECONDS`` (in the plans that route by partition: enqueue, claim, the
lease transitions, NextDueAt), so a lease keeper or a CLI that declares nothing still finds
every partition. A count is the largest one
declared or stored: a producer that declared 8 and a worker whose app says nothing still meet on
the same 8 partitions after one refresh. Lowering a count is not supported: tasks already in the
higher partitions would wait for a claim that never visits them (reads still see them).

Routing: a task with an idempotency key goes to the partition its key hashes to (so the same
key always meets the same ledger on a cluster); the others round-robin from a random start per
process (so many producers do not all begin with partition 0). A claim visits the partitions of
each queue from a start that moves by one per claim: each partition gets its turn, and priority
order holds within a partition.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterator

from conveyor.backends import base
from conveyor.backends.redis import keys
from conveyor.backends.redis.calls import Command, Plan

REFRESH_SECONDS = 5.0
MAX_PARTITIONS = 1024


class Partitions:
    """The partition counts this process knows, and the round-robin state of its producers and
    claimers. Thread-safe: ``itertools.count`` steps atomically under the GIL."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._declared: dict[str, int] = {}
        self._unsaved: set[str] = set()
        self._read_at = float("-inf")
        self._spread: dict[str, Iterator[int]] = {}
        self._turns: dict[str, Iterator[int]] = {}
        self._lock = threading.Lock()

    def declare(self, queue: str, partitions: int) -> None:
        keys.check_queue(queue)
        if not 1 <= partitions <= MAX_PARTITIONS:
            raise ValueError(f"partitions must be between 1 and {MAX_PARTITIONS}")
        with self._lock:
            self._declared[queue] = max(partitions, self._declared.get(queue, 1))
            self.counts[queue] = max(partitions, self.counts.get(queue, 1))
            self._unsaved.add(queue)
            self._read_at = float("-inf")

    def count(self, queue: str) -> int:
        return self.counts.get(queue, 1)

    def refresh(self) -> Plan[None]:
        """Save this process's declarations and read everyone's, unless done recently."""
        if time.monotonic() - self._read_at < REFRESH_SECONDS:
            return
        stored_reply = yield Command(("HGETALL", keys.PARTITIONS))
        stored = {_text(k): int(v) for k, v in _pairs(stored_reply)}
        with self._lock:
            raise_to = {q: n for q in self._unsaved
                        if (n := self._declared[q]) > stored.get(q, 1)}
            self._unsaved.clear()
        if raise_to:
            fields: list[str | int] = [x for item in raise_to.items() for x in item]
            yield Command(("HSET", keys.PARTITIONS, *fields))
        with self._lock:
            for queue, n in [*stored.items(), *raise_to.items()]:
                self.counts[queue] = max(n, self.counts.get(queue, 1))
            self._read_at = time.monotonic()

    def tag_for(self, task: base.NewTask) -> str:
        """The tag a new task is written to (its queue name checked: see keys.check_queue)."""
        n = self.count(task.queue)
        if n == 1:
            return keys.check_queue(task.queue)
        if task.idempotency_key is not None:
            return keys.partition_tag(task.queue, keys.key_partition(task.idempotency_key, n))
        return keys.partition_tag(task.queue, next(self._counter(self._spread, task.queue)) % n)

    def tags_to_claim(self, queue: str) -> list[str]:
        """The tags of ``queue`` in this claim's visiting order (the start moves every claim)."""
        n = self.count(queue)
        if n == 1:
            return [keys.check_queue(queue)]
        start = next(self._counter(self._turns, queue)) % n
        return [keys.partition_tag(queue, (start + i) % n) for i in range(n)]

    def tags(self, queue: str) -> list[str]:
        return keys.partition_tags(queue, self.count(queue))

    def _counter(self, counters: dict[str, Iterator[int]], queue: str) -> Iterator[int]:
        counter = counters.get(queue)
        if counter is None:
            with self._lock:
                counter = counters.setdefault(queue, itertools.count(random.randrange(1 << 16)))
        return counter


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _pairs(reply: object) -> list[tuple[bytes | str, bytes | str]]:
    """HGETALL's reply: a dict (parsed) or a flat list of field, value."""
    if isinstance(reply, dict):
        return list(reply.items())
    assert isinstance(reply, list)
    return [(reply[i], reply[i + 1]) for i in range(0, len(reply), 2)]
