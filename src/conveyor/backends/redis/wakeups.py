"""Wake-ups on Redis Cluster: one blocking pop per tag, each in a task of its own.

On one server a worker blocks in a single ``BLPOP`` over its queues' signal lists. A cluster
refuses a blocking pop over keys of several slots, and every queue (every partition) is a slot
of its own, so each tag gets a small watcher task on the worker's loop that blocks in ``BLPOP``
on that tag's list, again and again, and counts the tokens it takes. ``wait`` returns as soon as
a token of one of its tags was counted, or at its timeout, which is a local timer: a delayed
task starts at its due time, without Redis's 100 ms blocking-timeout tick in the way, so no
polling is needed near the end of a wait.

Tokens keep their meaning (see ``RedisBackend.wait_for_work``): a claim forgets the counts of
its tags before it runs, so a count means "work arrived since that claim", and a token is taken
by one watcher, so one enqueue wakes one worker. Each watcher holds one connection while it
blocks, in chunks of a second (an idle watcher sends one BLPOP a second). A watcher that loses
its node logs it, backs off (up to a second) and blocks again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from conveyor.backends.redis import keys

log = logging.getLogger("conveyor.backends.redis")
MAX_BACKOFF_SECONDS = 1.0


class SignalWatch:
    """The watchers of one event loop, over one async cluster client."""

    def __init__(self, client: Any, block_seconds: float, url: str) -> None:
        self._client = client
        self._block_seconds = block_seconds
        self._url = url
        self._tokens: dict[str, int] = {}
        self._arrived = asyncio.Event()
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._stopped = False

    def forget(self, tags: Sequence[str]) -> None:
        """A claim over ``tags`` is about to run: what arrived before it, it will see."""
        for tag in tags:
            self._tokens[tag] = 0

    async def wait(self, tags: Sequence[str], timeout: float) -> None:
        for tag in tags:
            if tag not in self._watchers or self._watchers[tag].done():
                self._tokens.setdefault(tag, 0)
                self._watchers[tag] = asyncio.create_task(self._watch(tag),
                                                          name=f"conveyor-signal-{tag}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            ready = [tag for tag in tags if self._tokens.get(tag)]
            if ready:
                for tag in ready:
                    self._tokens[tag] -= 1
                return
            left = deadline - loop.time()
            if left <= 0:
                return
            self._arrived.clear()
            try:
                async with asyncio.timeout(left):  # not wait_for: no task of its own
                    await self._arrived.wait()
            except TimeoutError:
                return

    async def aclose(self) -> None:
        """Cancel every watcher and wait for them (before the client closes under them).

        redis-py sometimes loses a cancellation (it sends each command under Python 3.11's
        ``wait_for``, which swallows one that lands as its send completes); such a watcher
        still sees its flag (or ``cancelling()``) when that ``BLPOP`` returns, which is why the
        pops block for short chunks: a lost cancellation costs at most one chunk, never a
        hang."""
        self._stopped = True
        watchers, self._watchers = list(self._watchers.values()), {}
        for watcher in watchers:
            watcher.cancel()
        if watchers:
            await asyncio.wait(watchers, timeout=self._block_seconds + 1.0)

    async def _watch(self, tag: str) -> None:
        signal = keys.tag_keys(tag).signal
        backoff = 0.05
        task = asyncio.current_task()
        # A cancellation redis-py lost still shows in cancelling(): end there too.
        while not self._stopped and not (task is not None and task.cancelling()):
            try:
                popped = await self._client.blpop([signal], timeout=self._block_seconds)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a node down or moving: never let the watcher die
                # One warning per outage and watcher; the retries of that outage go to debug.
                level = logging.WARNING if backoff == 0.05 else logging.DEBUG
                log.log(level, "redis %s: watching %s failed: %s", self._url, signal, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            if backoff != 0.05:
                log.info("redis %s: watching %s again", self._url, signal)
            backoff = 0.05
            if popped:
                self._tokens[tag] = self._tokens.get(tag, 0) + 1
                self._arrived.set()


class UrgentWatch:
    """Reads the urgent streams of one event loop's queues, for busy workers.

    An enqueue that puts a task ahead of every task already waiting in its queue adds an entry
    ``{p: priority}`` to the queue's urgent stream (``enqueue.lua``). Unlike the signal list,
    a stream is read by every worker, each from its own cursor, so every busy worker learns of
    the arrival and the one whose prefetch buffer holds only lower priorities claims it.

    Watcher tasks block in ``XREAD`` (in chunks, as :class:`SignalWatch` does with ``BLPOP``):
    one over every stream on a single server, one per stream on a cluster, where a read cannot
    span slots. ``wait`` returns the highest priority read since its previous return. Cursors
    start at the beginning: what a stream still holds (at most ``URGENT_CAP`` = 16 entries,
    ``_record.lua``) is read once at the first wait, so an announcement made while the
    watcher was still connecting is not missed, at the cost of one claim that may find
    nothing; an entry read while nobody waits is kept for the next wait (the same cost).
    """

    def __init__(self, client: Any, block_seconds: float, url: str, cluster: bool) -> None:
        self._client = client
        self._block_ms = max(1, int(block_seconds * 1000))
        self._url = url
        self._cluster = cluster
        self._highest: dict[str, int] = {}
        self._arrived = asyncio.Event()
        self._watchers: dict[tuple[str, ...], asyncio.Task[None]] = {}
        self._stopped = False

    async def wait(self, tags: Sequence[str], timeout: float) -> int | None:
        streams = [keys.tag_keys(tag).urgent for tag in tags]
        for group in ([(s,) for s in streams] if self._cluster else [tuple(streams)]):
            if group not in self._watchers or self._watchers[group].done():
                self._watchers[group] = asyncio.create_task(
                    self._watch(group), name=f"conveyor-urgent-{','.join(group)}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = [self._highest.pop(s) for s in streams if s in self._highest]
            if found:
                return max(found)
            left = deadline - loop.time()
            if left <= 0:
                return None
            self._arrived.clear()
            try:
                async with asyncio.timeout(left):
                    await self._arrived.wait()
            except TimeoutError:
                return None

    async def aclose(self) -> None:
        """Cancel the watchers and wait for them (see :meth:`SignalWatch.aclose`)."""
        self._stopped = True
        watchers, self._watchers = list(self._watchers.values()), {}
        for watcher in watchers:
            watcher.cancel()
        if watchers:
            await asyncio.wait(watchers, timeout=self._block_ms / 1000 + 1.0)

    async def _watch(self, streams: tuple[str, ...]) -> None:
        cursors: dict[str, Any] = dict.fromkeys(streams, b"0-0")
        backoff = 0.05
        task = asyncio.current_task()
        while not self._stopped and not (task is not None and task.cancelling()):
            try:
                reply = await self._client.xread(cursors, block=self._block_ms)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a node down or moving: never let the watcher die
                level = logging.WARNING if backoff == 0.05 else logging.DEBUG
                log.log(level, "redis %s: watching %s failed: %s", self._url,
                        ",".join(streams), exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            backoff = 0.05
            for stream, entries in (reply.items() if isinstance(reply, dict) else reply or []):
                name = stream.decode() if isinstance(stream, bytes) else stream
                for entry_id, fields in entries:
                    cursors[name] = entry_id
                    priority = int(fields.get(b"p", fields.get("p", 0)))
                    self._highest[name] = max(self._highest.get(name, -1), priority)
                self._arrived.set()
