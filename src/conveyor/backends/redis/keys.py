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

Each state has exactly one index, so counts are ZCARDs and a task is in one index at a time.

Beside the group, under the same tag (passed after the groups, only to the scripts that use it)::

    conveyor:{q}:paused     string  present while the queue is paused (claims skip the queue)
    conveyor:{q}:totals     hash    metric name -> total since the beginning (never expires)
    conveyor:{q}:minutes    hash    '<minute>:<name>' -> count of that minute (backend clock,
                                    floor(epoch / 60)); old fields pruned, the key expires an
                                    hour after the queue's last write

Global::

    conveyor:queues         set     every queue ever enqueued to (stats, recovery, lookups)
    conveyor:workers        hash    worker id -> msgpack worker row
    conveyor:idempotency    hash    idempotency key -> task id (one key space for all queues)
    conveyor:sequence       string  the sequence counter: enqueue order (ListTasks) and FIFO
    conveyor:schedules      hash    cron schedule name -> msgpack {last_due_at, last_task_id}
    conveyor:lock:{name}    hash    a leadership lease: holder, expires_at (epoch seconds)

Task ids in member and field names are stored compactly: a canonical UUID string (what
:func:`conveyor.ids.new_task_id` makes) as its 16 bytes, anything else as ``0xFF`` + UTF-8
(``0xFF 0xFF`` + UTF-8 when that would also be 16 bytes long), so the two forms never collide.
That saves 20 bytes in each place an id is stored (record field, index member).
"""

from __future__ import annotations

import uuid
from typing import NamedTuple

PREFIX = "conveyor"
QUEUES = f"{PREFIX}:queues"
WORKERS = f"{PREFIX}:workers"
IDEMPOTENCY = f"{PREFIX}:idempotency"
SEQUENCE = f"{PREFIX}:sequence"
SCHEDULES = f"{PREFIX}:schedules"


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


GROUP_SIZE = len(QueueKeys._fields)

STATE_INDEX = {
    "PENDING": "ready", "SCHEDULED": "scheduled", "FAILED": "retrying", "RUNNING": "leased",
    "DONE": "done", "CANCELLED": "cancelled", "DEAD": "dead",
}
"""The index that holds every task in a state (its position in a group is the same in Lua)."""


def queue_keys(queue: str) -> QueueKeys:
    """The keys of ``queue``; braces are refused since they would change the hash tag."""
    if "{" in queue or "}" in queue:
        raise ValueError(f"queue names cannot contain braces: {queue!r}")
    tag = f"{PREFIX}:{{{queue}}}"
    return QueueKeys(*(f"{tag}:{name}" for name in QueueKeys._fields))


def paused(queue: str) -> str:
    """The pause flag of ``queue`` (same hash tag as its group)."""
    return queue_keys(queue).tasks.removesuffix(":tasks") + ":paused"


def metrics(queues: list[str]) -> list[str]:
    """The metrics keys of ``queues``: totals then minutes, queue after queue."""
    found = []
    for queue in queues:
        tag = queue_keys(queue).tasks.removesuffix(":tasks")
        found += [f"{tag}:totals", f"{tag}:minutes"]
    return found


def groups(queues: list[str]) -> list[str]:
    """The KEYS of a script serving ``queues``, one group after another."""
    return [key for queue in queues for key in queue_keys(queue)]


def encode_id(task_id: str) -> bytes:
    """The compact stored form of a task id (see the module docstring)."""
    if len(task_id) == 36:
        try:
            parsed = uuid.UUID(task_id)
        except ValueError:
            pass
        else:
            if str(parsed) == task_id:
                return parsed.bytes
    raw = task_id.encode()
    return _RAW + _RAW + raw if len(raw) == 15 else _RAW + raw


def decode_id(stored: bytes) -> str:
    if len(stored) == 16:
        return str(uuid.UUID(bytes=stored))
    return stored.lstrip(_RAW).decode()
