"""The Redis key schema: the ONLY place a key name is built.

Scripts never build a key: every key a script touches arrives in KEYS, built here, so the same
scripts run on Redis Cluster. All keys of one queue share the hash tag ``{queue}`` and so live
in one slot; the few global keys carry no tag.

Per queue ``q`` (one "group" of keys, always passed to a script in this order)::

    conveyor:{q}:tasks      hash    task id -> msgpack record (every field of the task)
    conveyor:{q}:ready      zset    PENDING: score = (9 - priority) * 2^48 + sequence
                                    (priority first, FIFO within one; the head of each
                                    priority band is that band's oldest, which serves the
                                    starvation share without a second index)
    conveyor:{q}:scheduled  zset    SCHEDULED by due time (epoch seconds)
    conveyor:{q}:retrying   zset    FAILED (retry wait) by due time
    conveyor:{q}:leased     zset    RUNNING by lease deadline (epoch seconds)
    conveyor:{q}:done       zset    DONE by expiry (completed + result_ttl), for the pruner
    conveyor:{q}:cancelled  zset    CANCELLED by expiry
    conveyor:{q}:dead       zset    DEAD by completion time (the DLQ)
    conveyor:{q}:signal     list    wake-up tokens for idle workers (capped, see enqueue.lua)
    conveyor:{q}:urgent     stream  one entry {p: priority} per enqueue that put a task ahead of
                                    every task already waiting (capped): busy workers read it
                                    to claim urgent work at once (see wakeups.py)
    conveyor:{q}:idle       zset    the offers of idle workers waiting on this queue, by
                                    deadline (epoch seconds): member = msgpack [inbox key,
                                    worker id, lease seconds] (see :func:`offer`)

Per queue and waiting worker ``w``::

    conveyor:{q}:inbox:{w}  list    tasks enqueue.lua leased straight to ``w`` (a hand-off, see
                                    handoff.py), each one RESP-encoded claim row

The inbox is the one key a script finds in data rather than in KEYS: enqueue.lua pushes to the
inbox named in the offer it takes. It carries the queue's tag, so it shares the slot of the
keys the script was given.

Each state has exactly one index, so counts are ZCARDs and a task is in one index at a time.

Beside the group, under the same tag (passed after the groups, only to the scripts that use it)::

    conveyor:{q}:paused     string  present while the queue is paused (claims skip the queue)
    conveyor:{q}:totals     hash    metric name -> total since the beginning (never expires)
    conveyor:{q}:minutes    hash    '<minute>:<name>' -> count of that minute (backend clock,
                                    floor(epoch / 60)); old fields pruned, the key expires an
                                    hour after the queue's last write

Partitions: a queue declared with N partitions keeps partition 0 under ``{q}`` and partition
p (1 <= p < N) under the tag ``{q#p}``, each a full group of the keys above, so partitions land
in different slots (and so on different shards of a cluster). A queue name ending in ``#`` and
digits is refused: it would read as a partition of another queue. The pause flag is set on
every partition; metrics are kept per partition and summed when read.

Global::

    conveyor:queues         set     every tag ever enqueued to (stats, recovery, lookups):
                                    queue names, and q#p for the partitions p >= 1
    conveyor:partitions     hash    queue -> partition count (declared queues only)
    conveyor:workers        hash    worker id -> msgpack worker row
    conveyor:idempotency    hash    idempotency key -> task id (one key space for all queues)
    conveyor:sequence       string  the sequence counter: enqueue order (ListTasks) and FIFO

On Redis Cluster, where one script may only touch one slot, the idempotency ledger and the
sequence counter live per tag instead (``conveyor:{t}:idempotency``, ``conveyor:{t}:sequence``),
and the enqueue script records its tag in ``conveyor:{t}:queues`` (the client writes the global
registry before the enqueue). See :class:`Layout`.
    conveyor:schedules      hash    cron schedule name -> msgpack {last_due_at, last_task_id}
    conveyor:lock:{name}    hash    a leadership lease: holder, expires_at (epoch seconds)

Task ids in member and field names are stored compactly: a canonical UUID string (what
:func:`conveyor.ids.new_task_id` makes) as its 16 bytes, anything else as ``0xFF`` + UTF-8
(``0xFF 0xFF`` + UTF-8 when that would also be 16 bytes long), so the two forms never collide.
That saves 20 bytes in each place an id is stored (record field, index member).
"""

from __future__ import annotations

import functools
import re
import zlib
from typing import NamedTuple

from msgspec import msgpack

from conveyor.ids import canonical_uuid

PREFIX = "conveyor"
QUEUES = f"{PREFIX}:queues"
WORKERS = f"{PREFIX}:workers"
IDEMPOTENCY = f"{PREFIX}:idempotency"
SEQUENCE = f"{PREFIX}:sequence"
SCHEDULES = f"{PREFIX}:schedules"
PARTITIONS = f"{PREFIX}:partitions"
_PARTITION_SUFFIX = re.compile(r"#[0-9]+$")


def lock(name: str) -> str:
    """The key of one leadership lock (its own slot on a cluster: a lock touches nothing else)."""
    return f"{PREFIX}:lock:{{{name}}}"

_RAW = b"\xff"


class QueueKeys(NamedTuple):
    """The keys of one queue, in the order every script expects a group."""

    tasks: str
    ready: str
    scheduled: str
    retrying: str
    leased: str
    done: str
    cancelled: str
    dead: str
    signal: str
    urgent: str
    idle: str


GROUP_SIZE = len(QueueKeys._fields)

STATE_INDEX = {
    "PENDING": "ready", "SCHEDULED": "scheduled", "FAILED": "retrying", "RUNNING": "leased",
    "DONE": "done", "CANCELLED": "cancelled", "DEAD": "dead",
}
"""The index that holds every task in a state (its position in a group is the same in Lua)."""


@functools.lru_cache(maxsize=4096)
def check_queue(queue: str) -> str:
    """``queue`` if it can name a queue: braces would change the hash tag, and a ``#<digits>``
    ending would read as a partition of another queue."""
    if "{" in queue or "}" in queue:
        raise ValueError(f"queue names cannot contain braces: {queue!r}")
    if _PARTITION_SUFFIX.search(queue):
        raise ValueError(f"queue names cannot end in '#' and digits: {queue!r}")
    return queue


def paused(tag: str) -> str:
    """The pause flag of one tag (a queue, or one of its partitions)."""
    return f"{PREFIX}:{{{tag}}}:paused"


def totals(tag: str) -> str:
    """Metric name -> total since the beginning, of one tag."""
    return f"{PREFIX}:{{{tag}}}:totals"


def minutes(tag: str) -> str:
    """'<minute>:<name>' -> count of that minute, of one tag."""
    return f"{PREFIX}:{{{tag}}}:minutes"


@functools.lru_cache(maxsize=1024)
def inbox(tag: str, worker_id: str) -> str:
    """Where enqueue.lua hands tasks of ``tag`` to the waiting worker ``worker_id``."""
    return f"{PREFIX}:{{{tag}}}:inbox:{worker_id}"


@functools.lru_cache(maxsize=1024)
def offer(tag: str, worker_id: str, lease_seconds: float) -> bytes:
    """A worker's member in the ``idle`` zset of ``tag``: the same bytes every time (a renewed
    offer moves its deadline instead of adding a member), read by enqueue.lua. Cached: every
    claim and every wait of a worker sends its members."""
    return msgpack.encode([inbox(tag, worker_id), worker_id, float(lease_seconds)])


def metrics(tags: list[str]) -> list[str]:
    """The metrics keys of ``tags``: totals then minutes, tag after tag."""
    return [key for tag in tags for key in (totals(tag), minutes(tag))]


def queue_keys(queue: str) -> QueueKeys:
    """The keys of ``queue`` (its partition 0)."""
    return tag_keys(check_queue(queue))


@functools.lru_cache(maxsize=4096)
def tag_keys(tag: str) -> QueueKeys:
    """The keys of one tag: a queue, or one partition of a queue (see :func:`partition_tag`).
    Cached: every script call names them, and formatting eleven keys was a third of the
    Python of a single enqueue's plan (~10 of 29 us)."""
    return QueueKeys(*(f"{PREFIX}:{{{tag}}}:{name}" for name in QueueKeys._fields))


def groups(tags: list[str]) -> list[str]:
    """The KEYS of a script serving ``tags``, one group after another."""
    return [key for tag in tags for key in tag_keys(tag)]


def partition_tag(queue: str, partition: int) -> str:
    return queue if partition == 0 else f"{queue}#{partition}"


def partition_tags(queue: str, partitions: int) -> list[str]:
    return [partition_tag(queue, p) for p in range(max(1, partitions))]


def partition_of(tag: str) -> int:
    found = _PARTITION_SUFFIX.search(tag)
    return 0 if found is None else int(found.group()[1:])


def queue_of(tag: str) -> str:
    """The queue a tag belongs to (its logical name, what users see)."""
    return _PARTITION_SUFFIX.sub("", tag)


def key_partition(idempotency_key: str, partitions: int) -> int:
    """The partition of a task with an idempotency key: stable across processes and runs, so
    the same key always meets the same ledger (the one of its partition, on a cluster)."""
    return zlib.crc32(idempotency_key.encode()) % max(1, partitions)


class Layout:
    """Where the keys that are global on one server live: on a cluster, one per tag."""

    def __init__(self, cluster: bool) -> None:
        self.cluster = cluster

    def sequence(self, tag: str) -> str:
        return f"{PREFIX}:{{{tag}}}:sequence" if self.cluster else SEQUENCE

    def idempotency(self, tag: str) -> str:
        return f"{PREFIX}:{{{tag}}}:idempotency" if self.cluster else IDEMPOTENCY

    def registry(self, tag: str) -> str:
        return f"{PREFIX}:{{{tag}}}:queues" if self.cluster else QUEUES

    def absent(self, tag: str) -> str:
        """A key of ``tag``'s slot that is never written: on a cluster it stands in KEYS for a
        global key that a per-slot call must not touch (prune's worker registry)."""
        return f"{PREFIX}:{{{tag}}}:absent"


def encode_id(task_id: str) -> bytes:
    """The compact stored form of a task id (see the module docstring)."""
    if len(task_id) == 36 and task_id[8] == task_id[13] == task_id[18] == task_id[23] == "-":
        digits = task_id.replace("-", "")
        try:
            packed = bytes.fromhex(digits)
        except ValueError:
            packed = b""
        if len(packed) == 16 and packed.hex() == digits:  # canonical: lowercase, 8-4-4-4-12
            return packed
    raw = task_id.encode()
    return _RAW + _RAW + raw if len(raw) == 15 else _RAW + raw


def decode_id(stored: bytes) -> str:
    if len(stored) == 16:
        return canonical_uuid(stored.hex())
    return stored.lstrip(_RAW).decode()
