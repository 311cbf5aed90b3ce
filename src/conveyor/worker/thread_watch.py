"""The wait for work made by a pool thread, where the backend allows it (Redis on one server).

Why a thread: an idle worker's pickup is an enqueue, the ``BLPOP`` reply that hands the task
over, and the task's start in a pool thread. Woken on the event loop, the reply first wakes the
loop (epoll, the transport, the stream, the task that awaited it) and then the pool thread: two
wake-ups, each about 45 us on the benchmark machine. A pool thread blocked in the ``BLPOP``
itself is woken by its socket and runs the task right there. Measured there (2026-11-25, a
push every 5 ms, time from the push to a pool thread holding the value, p50): 158-163 us
through the loop and redis-py's connection as the worker used it, 115-123 us for a thread that
blocks and passes the value to another pool thread, 68 us for the thread that blocks and keeps
it.

How: the wait is a job of the worker's :class:`~conveyor.worker.threads.ThreadRunner`. It
blocks in :meth:`~conveyor.backends.base.WaitsInThread.wait_in_thread` (the worker's offer and
its ``BLPOP``). A task handed to it that runs in a thread, with a slot free, starts in that same
thread: the job first submits the wait again (another pool thread takes it over) and then runs
the task as its own job. Everything else goes to the event loop, as before: tasks of the other
lanes and malformed ones (the loop's start rejects those), and the wake-up tokens that say work
is waiting to be claimed (the job then waits for the loop's next claim, as the loop's watcher
does: the token means "work since the last claim", so waiting again first would spin).

Stopping: the worker asks the backend to interrupt the wait (a marker the ``BLPOP`` returns at
once) and waits for the job to end; a task handed over meanwhile goes to the loop's buffer,
which the worker releases unstarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence

from conveyor.backends.base import ClaimedTask, Waiter, WaitsInThread
from conveyor.worker.threads import Job, ThreadRunner

log = logging.getLogger("conveyor.worker")

FAILURE_BACKOFF_SECONDS = 1.0
"""How long a wait for work that failed (the store unreachable) backs off before the next, in
the waiting thread and in the loop's watcher alike."""
STOP_WAIT_SECONDS = 2.0
"""How long a stopping worker waits for the job to end. Longer only when the store is
unreachable and the interrupt could not be sent: the job then ends with its blocked read."""


def _nothing() -> None:
    return None


class ThreadWatch:
    """The waiting job of one worker. Its hooks run in the waiting thread:

    - ``waiter()``: the worker as it waits now (open to a hand-off or not);
    - ``start_here(task)``: the job that runs ``task`` in this thread, with its slot taken, or
      None when it belongs to the loop;
    - ``announce()``: tell the loop of the tasks started here (the next wait calls it);
    - ``to_loop(tasks)``: hand tasks to the loop to start or buffer;
    - ``woken()``: tell the loop work is waiting to be claimed.
    """

    def __init__(self, backend: WaitsInThread, queues: Sequence[str], runner: ThreadRunner,
                 loop: asyncio.AbstractEventLoop, block_seconds: float, *,
                 waiter: Callable[[], Waiter], start_here: Callable[[ClaimedTask], Job | None],
                 announce: Callable[[], None], to_loop: Callable[[list[ClaimedTask]], None],
                 woken: Callable[[], None]) -> None:
        self._backend = backend
        self._queues = list(queues)
        self._runner = runner
        self._loop = loop
        self._block_seconds = block_seconds
        self._waiter = waiter
        self._start_here = start_here
        self._announce = announce
        self._to_loop = to_loop
        self._woken = woken
        self._claimed = threading.Event()
        self._stopping = threading.Event()
        self._ended: asyncio.Future[None] = loop.create_future()

    def start(self) -> None:
        self._runner.submit(self._job)

    def claimed(self) -> None:
        """(Loop) a claim ran: a later token is news again."""
        self._claimed.set()

    async def stop(self) -> None:
        """(Loop) end the wait; returns once the job has ended (or after
        :data:`STOP_WAIT_SECONDS`, logged)."""
        self._stopping.set()
        self._claimed.set()
        try:
            await self._backend.interrupt_wait(self._queues, self._waiter())
        except Exception as exc:
            log.warning("interrupting the wait for work failed: %s", exc)
        await asyncio.wait([self._ended], timeout=STOP_WAIT_SECONDS)
        if not self._ended.done():
            log.warning("the waiting thread did not end within %.0fs; a task handed to it "
                        "comes back when its lease runs out", STOP_WAIT_SECONDS)

    def _successor(self) -> Callable[[], None]:
        """The wait taken over from a thread that started a task: the loop hears of that start
        from here, so its wake-up comes after the task began, not in its way."""
        self._announce()
        return self._job()

    def _job(self) -> Callable[[], None]:
        try:
            run = self._wait()
        except BaseException as exc:  # a hook failed: the loop is gone, or a bug
            log.error("the waiting thread stopped: %r", exc)
            run = None
        if run is None:
            self._end()
            return _nothing
        return run()

    def _wait(self) -> Job | None:
        """Wait until a task starts here (its job, the wait passed on) or a stop (None)."""
        while not self._stopping.is_set():
            self._claimed.clear()
            try:
                handed = self._backend.wait_in_thread(self._queues, self._block_seconds,
                                                      self._waiter())
            except Exception as exc:
                log.warning("waiting for work failed: %s", exc)
                self._stopping.wait(FAILURE_BACKOFF_SECONDS)
                continue
            if handed:
                run = (self._start_here(handed[0])
                       if len(handed) == 1 and not self._stopping.is_set() else None)
                if run is None:
                    self._to_loop(handed)
                    continue
                self._runner.submit(self._successor)  # the wait goes on in another thread
                return run
            if not self._stopping.is_set():
                self._woken()
                self._claimed.wait()
        return None

    def _end(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits for us
            self._loop.call_soon_threadsafe(self._ended_now)

    def _ended_now(self) -> None:
        if not self._ended.done():
            self._ended.set_result(None)
