"""Hand-offs: a task enqueued into an empty queue goes straight to a worker that waits for it.

Without them an idle worker's pickup takes two round trips after the enqueue: its ``BLPOP``
returns a wake-up token, then it claims. The claim was the largest part of the pickup time
(0.56 of 1.35 ms at the median on the benchmark machine). With them, a worker that waits with
a free slot first *offers* (``offer.lua``: its member in each queue's idle zset, scored by a
deadline), in the same round trip as its ``BLPOP``. An enqueue that finds a live offer, and
nothing waiting ahead of the new task, leases the task to that worker inside ``enqueue.lua``
and pushes the claim row into the worker's inbox, a list the ``BLPOP`` watches before the
signal lists. The task is RUNNING, with the worker's id, token and lease, when the worker wakes.

What keeps it honest:

- One task per offer: taking an offer removes it. Only a worker with a free slot and nothing
  buffered offers, and a claim that takes anything withdraws the worker's offers, so a task is
  never handed to a worker that could not start it at once.
- Priority order holds: no hand-off while a ready task waits in the queue (a claim would take
  that first). Pausing a queue drops its offers.
- Offers expire (the ``BLPOP`` chunk plus :data:`OFFER_MARGIN_SECONDS`). A worker that dies
  while waiting can be handed tasks only until then; they are leased to it and come back when
  their lease runs out, counted as "worker lost", as a claim whose reply was lost does.
- A worker that stops withdraws its offers and releases what its inboxes still hold
  (:meth:`RedisBackend.withdraw`), no attempt counted.

One server only. On a cluster each tag is watched by a task of its own (:mod:`wakeups`), and
workers make no offers: every enqueue wakes them with tokens, as before.

An inbox entry is the claim row as one RESP array (nulls for empty fields), so it is read with
hiredis's parser into exactly what a claim script replies, except that it names the tag (a
queue's partition) where a claim names the queue: the queue is read from the tag here, by the
same rule as everywhere else (:func:`keys.queue_of`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hiredis

from conveyor.backends import base
from conveyor.backends.redis import keys
from conveyor.backends.redis.calls import Eval
from conveyor.backends.redis.replies import claimed

OFFER_MARGIN_SECONDS = 1.0
"""How long an offer outlives the ``BLPOP`` it was made with: the final, polled stretch of a
wait and the next chunk's renewal both fall inside it."""
INBOX_DRAIN = 1000
"""Entries taken per inbox when a worker withdraws (one per offer it made: a handful)."""
STOP = b"stop"
"""Pushed into a worker's own inbox to end its waiting thread's ``BLPOP`` at once (a stopping
worker, :meth:`RedisBackend.interrupt_wait`). Never a task: a hand-off entry is a RESP array."""


def inboxes(tags: Sequence[str], waiter: base.Waiter) -> list[str]:
    return [keys.inbox(tag, waiter.worker_id) for tag in tags]


def offer(tags: Sequence[str], waiter: base.Waiter, seconds: float, now: str) -> Eval:
    """Offer to take a task of ``tags`` for ``seconds`` (0: withdraw the offers)."""
    return Eval("offer", [key for tag in tags for key in (keys.tag_keys(tag).idle,
                                                           keys.paused(tag))],
                [now, float(seconds),
                 *(keys.offer(tag, waiter.worker_id, waiter.lease_seconds) for tag in tags)])


def tasks_of(entries: Sequence[bytes]) -> list[base.ClaimedTask]:
    """The tasks of inbox entries (a stop marker among them is no task)."""
    return [handed(entry) for entry in entries if entry != STOP]


def handed(entry: bytes) -> base.ClaimedTask:
    """The task of one inbox entry."""
    reader = hiredis.Reader()
    reader.feed(entry)
    row: Any = reader.gets()
    if not isinstance(row, list) or len(row) != 15:
        raise ValueError(f"malformed hand-off entry: {entry[:80]!r}")
    row[1] = keys.queue_of(row[1].decode()).encode()  # the tag names the queue
    return claimed(row)
