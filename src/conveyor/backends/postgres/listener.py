"""LISTEN/NOTIFY wake-ups: one dedicated connection per backend and process, in a thread.

Every transition that makes work (enqueue, a retry, release, recovery, requeue) runs
``pg_notify('conveyor_work', queue)`` inside its transaction, so the notification is sent at
commit and only then. The listener also LISTENs on a channel of its own (``private``): an
enqueue of a single task notifies only there when a worker of this process offered to take
one (``0006_offers.sql``), and that counts as any other notification for the queue.

This listener counts notifications per queue; a waiter compares the counts with those it saw
when the worker last claimed, so work committed between a claim that found nothing and the
wait that follows is never missed (the listener is LISTENing before that claim runs, and stays
connected across waits).

A thread, not a coroutine: the counts are the same for every event loop of the process (tests
and scripts run several ``asyncio.run`` in turn), and the thread serves sync code too. While a
coroutine waits, its event loop also watches the socket and reads what arrives itself: the
wake-up then costs one thread switch, not two (the listener thread, then the loop through
``call_soon_threadsafe``), which on a busy machine is a good part of the pickup latency.
Whichever side reads a notification first counts it, once. If the connection drops, the thread
reconnects with a backoff and bumps ``generation``, which wakes every waiter: notifications sent
while it was away are lost, so callers must look for themselves (the worker claims again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

log = logging.getLogger("conveyor.postgres")

Mark = tuple[int, dict[str, int]]
"""(generation, notifications per queue): what a waiter compares."""


class Listener:
    def __init__(self, conninfo: str, channel: str) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self.private = f"{channel}_{uuid.uuid4().hex}"
        """This listener's own channel (kept across reconnects, so offers naming it hold)."""
        self._lock = threading.Lock()
        self._reading = threading.Lock()
        """Held while reading from the connection (libpq is not thread-safe per connection)."""
        self._counts: dict[str, int] = {}
        self._generation = 0
        self._wakers: set[Callable[[], None]] = set()
        self._stopped = threading.Event()
        self._connection: psycopg.Connection[Any] | None = None
        self._thread: threading.Thread | None = None
        self.notifications = 0

    def start(self) -> None:
        """Connect and LISTEN in the calling thread, so the LISTEN is in effect when this
        returns; then hand the connection to a daemon thread."""
        self._connection = self._listen()
        self._thread = threading.Thread(target=self._serve, name="conveyor-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """The thread notices within a fraction of a second and closes its connection."""
        self._stopped.set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopped.is_set()

    def mark(self) -> Mark:
        with self._lock:
            return self._generation, dict(self._counts)

    def changed(self, since: Mark, queues: Sequence[str] | None) -> bool:
        """Any notification for ``queues`` (None: any queue), or a reconnect, since ``since``."""
        generation, counts = since
        with self._lock:
            if self._generation != generation:
                return True
            names = self._counts.keys() if queues is None else queues
            return any(self._counts.get(q, 0) != counts.get(q, 0) for q in names)

    async def wait(self, since: Mark, queues: Sequence[str] | None, timeout: float) -> None:
        """Return once :meth:`changed` is true, or after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits on it any more
                loop.call_soon_threadsafe(event.set)

        deadline = time.monotonic() + timeout
        with self._lock:
            self._wakers.add(wake)
        watched = self._watch(loop)
        try:
            while not self.changed(since, queues):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                try:
                    async with asyncio.timeout(remaining):  # not wait_for: no task of its own
                        await event.wait()
                except TimeoutError:
                    return
                event.clear()
        finally:
            if watched is not None:
                self._unwatch(loop, watched)
            with self._lock:
                self._wakers.discard(wake)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> int | None:
        """Read the connection from ``loop`` when it becomes readable; returns the descriptor
        watched (to :meth:`_unwatch`), or None (no connection now, or a loop that cannot watch
        sockets). The loop watches a duplicate of the socket's descriptor, its own: the thread
        may close the connection meanwhile, and the number must not be reused by another
        socket of the loop before the watch ends."""
        conn = self._connection
        if conn is None or conn.closed:
            return None
        try:
            fd = os.dup(conn.fileno())
        except (OSError, psycopg.Error):
            return None

        def readable() -> None:
            try:
                self._read(conn, blocking=False)
            except psycopg.Error:  # the thread sees it too, reconnects and wakes every waiter
                loop.remove_reader(fd)

        try:
            loop.add_reader(fd, readable)
        except (NotImplementedError, RuntimeError, ValueError, OSError):
            os.close(fd)
            return None
        return fd

    @staticmethod
    def _unwatch(loop: asyncio.AbstractEventLoop, fd: int) -> None:
        with contextlib.suppress(Exception):
            loop.remove_reader(fd)
        os.close(fd)

    # -- the thread ------------------------------------------------------------------------------

    def _listen(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=2)
        conn.execute(f"LISTEN {self._channel}")
        conn.execute(f"LISTEN {self.private}")
        return conn

    def _serve(self) -> None:
        delay = 0.05
        while not self._stopped.is_set():
            conn = self._connection
            try:
                if conn is None or conn.closed:
                    conn = self._connection = self._listen()
                    self._bump(generation=True)
                    delay = 0.05
                readable, _, _ = select.select([conn.fileno()], [], [], 0.2)
                if readable:
                    self._read(conn, blocking=True)
            except (psycopg.Error, OSError, ValueError) as exc:
                if self._stopped.is_set():
                    break
                log.warning("LISTEN connection lost, reconnecting in %.2fs: %s", delay, exc)
                self._close()
                self._stopped.wait(delay)
                delay = min(delay * 2, 1.0)  # back within a second of the server
        self._close()

    def _read(self, conn: psycopg.Connection[Any], blocking: bool) -> None:
        """Take whatever the server sent and count its notifications. Never blocks on the
        socket (libpq keeps it non-blocking); ``blocking=False`` also skips the read when the
        other side is reading (it counts, and wakes the waiters, itself)."""
        if not self._reading.acquire(blocking=blocking):
            return
        try:
            pgconn = conn.pgconn
            pgconn.consume_input()
            queues = []
            while (notify := pgconn.notifies()) is not None:
                queues.append(notify.extra.decode(conn.info.encoding))
        finally:
            self._reading.release()
        if queues:
            self._count(queues)

    def _count(self, queues: list[str]) -> None:
        with self._lock:
            for queue in queues:
                self._counts[queue] = self._counts.get(queue, 0) + 1
            self.notifications += len(queues)
            wakers = list(self._wakers)
        for wake in wakers:
            wake()

    def _bump(self, generation: bool) -> None:
        with self._lock:
            self._generation += int(generation)
            wakers = list(self._wakers)
        for wake in wakers:
            wake()

    def _close(self) -> None:
        conn, self._connection = self._connection, None
        if conn is not None:
            with self._reading, contextlib.suppress(psycopg.Error):  # not while a loop reads
                conn.close()
