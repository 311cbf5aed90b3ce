"""One worker process: an asyncio core that claims tasks in batches, runs them, acknowledges them
in batches, heartbeats their leases, and shuts down gracefully.

Lifecycle::

    run() -> register -> [claim -> execute -> acknowledge]* -> stop requested (SIGTERM, stop())
          -> stop claiming -> release the prefetched, unstarted tasks (no attempt counted)
          -> wait up to ``grace`` seconds for running tasks -> fail the rest for a retry
          -> flush acknowledgements -> unregister -> exit code 0 (clean) or 1 (forced)
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import os
import signal
import socket
import threading
import uuid
from collections import deque
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from conveyor.backends.base import (
    Claim,
    ClaimedTask,
    Completion,
    Failure,
    Lease,
    NextDueAt,
    Now,
    Release,
    UnregisterWorker,
    Waiter,
    WaitsInThread,
)
from conveyor.errors import ConfigurationError
from conveyor.retry import NO_RETRY
from conveyor.scheduler.cron import CronScheduler
from conveyor.scheduler.pruner import Pruner
from conveyor.scheduler.rescuer import Rescuer
from conveyor.worker.buffer import PRIORITIES, PrefetchBuffer
from conveyor.worker.executor import Executor, Prepared
from conveyor.worker.finisher import Finisher
from conveyor.worker.heartbeat import Heartbeat
from conveyor.worker.lease_keeper import LeaseKeeper, can_run_apart
from conveyor.worker.metrics import BusyMeter, MetricsRecorder
from conveyor.worker.outcome import Outcome, transition
from conveyor.worker.thread_watch import FAILURE_BACKOFF_SECONDS, ThreadWatch
from conveyor.worker.threads import Job

if TYPE_CHECKING:
    from conveyor.app import Conveyor

log = logging.getLogger("conveyor.worker")
URGENT_BACKOFF_MAX = 0.1
"""Seconds between two fallback urgent claims that keep finding nothing (``Worker._fill``)."""
HANDOFF_YIELD_SECONDS = 0.0001
"""After a hand-off, how long the watcher waits before it offers again (the loop's poll rounds
it up to a millisecond): the pickup p50 went 0.8-1.0 -> 0.55-0.7 ms in alternated runs."""
WARM_CONNECTIONS = 8
"""Connections opened before the first claim (``Backend.warm_up``): about what a busy worker
uses at once (its claims, an urgent claim, the wake-up and urgent watchers' blocking reads,
acknowledgements, the due-time read, heartbeats, recovery and pruning)."""
RECANCEL_SECONDS = 0.05
"""How long a stopping worker waits for a cancelled watcher before cancelling it again
(``_cancel_and_wait``)."""


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a background future's outcome as seen (its result may go unused)."""
    if not future.cancelled():
        future.exception()


class Worker:
    """Runs the tasks of ``app`` from ``queues``.

    ``concurrency`` slots run tasks at once; up to ``prefetch`` more are claimed ahead so the next
    batch is ready when slots free up (set it to 0 for long tasks, so idle workers elsewhere get
    them). ``burst`` exits once no task is due; with ``burst_wait_scheduled`` it also waits for
    delayed tasks and retries of its queues.
    """

    def __init__(
        self,
        app: Conveyor,
        queues: Sequence[str] | None = None,
        *,
        concurrency: int = 10,
        prefetch: int | None = None,
        claim_batch: int | None = None,
        pool: str = "thread",
        burst: bool = False,
        burst_wait_scheduled: bool = False,
        grace: float = 25.0,
        heartbeat_interval: float | None = None,
        recovery_interval: float | None = None,
        idle_timeout: float = 5.0,
        worker_id: str | None = None,
        heartbeat: str = "process",
        scheduler: bool = False,
        leader_ttl: float = 10.0,
    ) -> None:
        if concurrency < 1:
            raise ConfigurationError("concurrency must be >= 1")
        if claim_batch is not None and claim_batch < 1:
            raise ConfigurationError("claim_batch must be >= 1")
        if pool not in ("thread", "process"):
            raise ConfigurationError("pool must be 'thread' or 'process'")
        self.app = app
        self.queues = tuple(queues or app.all_queues() or [app.default_queue])
        self.concurrency = concurrency
        self.prefetch = concurrency if prefetch is None else max(0, prefetch)
        self.claim_batch = claim_batch
        """The most tasks one claim takes (None: the backend's ``claim_batch``, else no
        limit); a full claim is followed by the next at once until the buffer is full."""
        self.burst = burst
        self.burst_wait_scheduled = burst_wait_scheduled
        self.grace = grace
        self.idle_timeout = idle_timeout
        self.lease = app.lease
        self.heartbeat_interval = heartbeat_interval or max(0.05, app.lease / 3)
        self.recovery_interval = recovery_interval or max(0.1, min(app.lease / 2, 10.0))
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.exit_code: int | None = None
        self.processed = 0
        self._pool = pool
        if heartbeat not in ("process", "loop"):
            raise ConfigurationError("heartbeat must be 'process' or 'loop'")
        self.heartbeat = heartbeat
        self.scheduler = scheduler
        self.leader_ttl = leader_ttl
        self.cron: CronScheduler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._cold = False
        self._stop_requested = False
        self._buffer = PrefetchBuffer(app.starvation_share)
        self._metrics = MetricsRecorder(self.lease)
        self._busy = BusyMeter()
        self._running: dict[str, tuple[ClaimedTask, asyncio.Future[None]]] = {}
        self._slots = threading.Lock()
        self._reserved = 0
        """Slots taken by starts under way: on the loop (``_start_from_buffer``) or in the
        waiting thread (``_start_here``), until the task is in ``_running``. Read and changed
        under ``_slots``, so the two never start more tasks together than there are slots."""
        self._watch: ThreadWatch | None = None
        self._thread_outcomes: deque[tuple[ClaimedTask, Outcome | Prepared]] = deque()
        """From pool threads to the loop, in order: an outcome, or (a Prepared) a task the
        waiting thread started, which the loop registers before any outcome behind it."""
        self._drain_scheduled = False
        self._unsettled = 0
        self._lost: set[str] = set()
        self._abandoned: set[str] = set()
        self._claim_limit: int | None = None
        """``claim_batch``, or the backend's: resolved once the backend is up (``arun``)."""
        self._overrun_timers: dict[str, asyncio.TimerHandle] = {}
        """Each thread-lane task's timeout timer, cancelled when the task returns in time: left
        to fire, a worker at 10,000 tasks/s with 30 s timeouts kept 300,000 in the loop's heap."""
        self._share_credit = 0.0
        self._rotation = 0
        self._wake: asyncio.Event | None = None
        """Set whenever the fetch loop may have something to do: a slot freed, work arrived
        (the watcher), or a stop was asked for. One event, so the loop waits on one thing."""
        self._work_pending = False
        self._claimed: asyncio.Event | None = None
        self._last_claim = 0.0
        self.claim_interval = 0.002
        """While busy, a wake-up claims a small batch at most this often (seconds)."""
        self.urgent_limit = max(1, min(32, concurrency))
        """Tasks an urgent claim takes at most, and how far past ``concurrency + prefetch``
        urgent claims may fill the buffer."""
        self._urgent_backoff = self.claim_interval
        self._next_urgent = 0.0
        self.urgent_fallback = True
        """With a full buffer, also try urgent claims on plain wake-ups (backing off while they
        find nothing): the only way to find urgent work where the backend announces none
        (``signals_priority``), and on Redis the way for work that arrived into an empty queue
        while this worker's buffer was full (only overtaking arrivals are announced)."""
        self._recheck: asyncio.TimerHandle | None = None
        self._urgent_claim: asyncio.Task[list[ClaimedTask] | None] | None = None
        self._due_reading: asyncio.Future[float] | None = None

    # -- control ---------------------------------------------------------------------------------

    def run(self, timeout: float | None = None) -> int:
        """Run in this thread until stopped (or, in burst mode, until no task is due)."""
        return asyncio.run(self._main(timeout))

    async def _main(self, timeout: float | None) -> int:
        try:
            if timeout is None:
                return await self.arun()
            try:
                return await asyncio.wait_for(self.arun(), timeout)
            except TimeoutError:
                raise TimeoutError(f"worker did not finish within {timeout}s") from None
        finally:
            await self.app.backend.release_loop()  # this loop ends here

    def stop(self, cold: bool = False) -> None:
        """Ask the worker to stop, from any thread. ``cold`` skips the grace period."""
        self._cold = self._cold or cold
        self._stop_requested = True
        loop = self._loop
        if loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed: stopped anyway
                loop.call_soon_threadsafe(self._on_stop)

    def _on_stop(self) -> None:
        assert self._stop is not None and self._wake is not None
        self._stop.set()
        self._wake.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM / first SIGINT: warm stop; second: cold stop; SIGUSR1: dump stacks."""
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if self._stop is not None and self._stop.is_set():
                log.warning("second signal: cold stop")
                self.stop(cold=True)
            else:
                log.info("%s: warm stop (finishing running tasks, grace %.0fs)",
                         signal.Signals(signum).name, self.grace)
                self.stop()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
        with contextlib.suppress(AttributeError, ValueError):
            faulthandler.register(signal.SIGUSR1, all_threads=True)

    # -- main loop -------------------------------------------------------------------------------

    async def arun(self) -> int:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._claimed = asyncio.Event()
        if self._stop_requested:  # stop() came before the loop existed
            self._on_stop()
        backend = self.app.backend
        keeper = None
        if self.heartbeat == "process" and can_run_apart(self.app.url, self.app.backend_options):
            # First, before the backend or the thread pool start a thread: then it can fork.
            keeper = LeaseKeeper(self.app.url, self.app.backend_options, self.id, self.lease,
                                 self.heartbeat_interval)
        try:
            started_at = await backend.aexecute(Now())
        except BaseException:
            if keeper is not None:
                keeper.close()
            raise
        self._executor = Executor(self.app.tasks, self.id, self.concurrency, self._pool,
                                  self.app.max_payload_bytes, backend=backend,
                                  quarantine_after=max(1, self.app.max_worker_lost - 1))
        self._finisher = Finisher(backend, self._settled, self._metrics)
        if keeper is not None:
            keeper.listen(self._on_lost)
        self._heartbeat = Heartbeat(
            backend, self.id, self.queues, self.concurrency, self.lease, started_at,
            self._leases, self._busy.average, self._on_lost, self.heartbeat_interval,
            keeper,
        )
        self.rescuer = Rescuer(backend, self.app.max_worker_lost, self.recovery_interval)
        self.pruner = Pruner(backend)
        await backend.aexecute(self._heartbeat.registration())
        self._claim_limit = self.claim_batch or backend.claim_batch
        await backend.warm_up(WARM_CONNECTIONS)
        loops_stop = asyncio.Event()
        loops = [
            asyncio.create_task(self._finisher.run(loops_stop)),
            asyncio.create_task(self._heartbeat.run(loops_stop)),
            asyncio.create_task(self.rescuer.run(loops_stop)),
            asyncio.create_task(self.pruner.run(loops_stop)),
        ]
        if self.scheduler:
            self.cron = CronScheduler(self.app, self.id, self.leader_ttl)
            loops.append(asyncio.create_task(self.cron.run(loops_stop)))
        log.info("worker %s started: queues=%s concurrency=%d pool=%s", self.id,
                 ",".join(self.queues), self.concurrency, self._pool)
        self.started.set()
        try:
            await self._fetch_loop()
        finally:
            clean = await self._shutdown()
            loops_stop.set()
            self._finisher.wake()
            await asyncio.gather(*loops, return_exceptions=True)
            await self._finisher.flush(final=True)
            with contextlib.suppress(Exception):
                await backend.aexecute(UnregisterWorker(self.id))
            self._executor.close()
            if self._heartbeat.keeper is not None:
                self._heartbeat.keeper.close()
            self.exit_code = 0 if clean else 1
            self.stopped.set()
            log.info("worker %s stopped (%d processed)", self.id, self.processed)
        return self.exit_code

    async def _fetch_loop(self) -> None:
        assert self._stop is not None and self._wake is not None
        self._watch = self._thread_watch()
        watcher = None
        if self._watch is not None:
            self._watch.start()
        else:
            watcher = asyncio.create_task(self._watch_for_work())
        urgent = (asyncio.create_task(self._watch_for_urgent())
                  if self.app.backend.signals_priority else None)
        try:
            while not self._stop.is_set():
                self._wake.clear()  # anything after this instant wakes the wait below
                more = await self._fill()
                self._start_from_buffer()
                if more is None:  # the backend failed; _fill logged it and backed off
                    continue
                if more:
                    continue
                if self._running or self._buffer:
                    await self._wake.wait()
                    continue
                if self.burst and await self._burst_done():
                    return
                await self._idle()
        finally:
            if self._watch is not None:
                await self._watch.stop()
            for task in (watcher, urgent):
                if task is not None:
                    await _cancel_and_wait(task)
            if self._urgent_claim is not None:
                await self._urgent_claim  # its tasks join the buffer that _shutdown releases
            try:  # what was handed over and not received joins it too
                self._take(await self.app.backend.withdraw(self.queues, self._waiter()))
            except Exception as exc:
                log.warning("withdrawing from hand-offs failed (what was handed over comes "
                            "back when its lease runs out): %s", exc)

    def _thread_watch(self) -> ThreadWatch | None:
        """The wait in a pool thread (``thread_watch``), where the backend allows it and this
        worker runs tasks in threads; otherwise ``_watch_for_work`` waits on the loop."""
        if not self._executor.waits_in_thread:
            return None
        assert self._loop is not None
        waits: WaitsInThread = self.app.backend  # type: ignore[assignment]
        return ThreadWatch(waits, self.queues, self._executor.threads, self._loop,
                           self.idle_timeout, waiter=self._waiter, start_here=self._start_here,
                           announce=self._schedule_drain, to_loop=self._from_thread,
                           woken=self._from_thread_woken)

    def _start_here(self, claimed: ClaimedTask) -> Job | None:
        """(Waiting thread) the job that runs a task handed over, in that thread, when it runs
        in a thread and a slot is free; None sends it to the loop. The loop hears of the start
        through the outcome queue, so it registers the task before its outcome arrives (the
        next wait wakes the loop for it: ``announce``)."""
        prepared = self._executor.prepare(claimed)
        if not isinstance(prepared, Prepared) or prepared.lane != "thread":
            return None
        if self._stop_requested or not self._reserve_slot():
            return None
        self._thread_outcomes.append((claimed, prepared))
        return self._executor.thread_job(prepared, partial(self._thread_finished, claimed))

    def _from_thread(self, handed: list[ClaimedTask]) -> None:
        """(Waiting thread) tasks handed over that the loop starts or buffers."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._take_handed, handed)

    def _take_handed(self, handed: list[ClaimedTask]) -> None:
        self._take(handed)
        self._start_from_buffer()

    def _from_thread_woken(self) -> None:
        """(Waiting thread) work is waiting to be claimed."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._work_arrived)

    def _work_arrived(self) -> None:
        self._work_pending = True
        if self._wake is not None:
            self._wake.set()

    def _started_in_thread(self, prepared: Prepared) -> None:
        """A task the waiting thread started: what ``_start`` records for the others."""
        claimed = prepared.claimed
        self._metrics.claimed([claimed])
        self._metrics.started(claimed)
        self._unsettled += 1
        self._track_in_thread(prepared)
        with self._slots:
            self._reserved -= 1
        self._heartbeat.leases_claimed([claimed])

    def _reserve_slot(self) -> bool:
        with self._slots:
            if len(self._running) + self._reserved >= self.concurrency:
                return False
            self._reserved += 1
            return True

    async def _watch_for_work(self) -> None:
        """Wake the fetch loop when work arrives, busy or idle. Without it a worker busy with a
        long task would not see new work until a slot freed, free slots notwithstanding.

        After each wake-up it waits for the loop's next claim: the backend's signal means
        "work since the last claim", so watching again before that claim would spin."""
        assert self._wake is not None and self._claimed is not None
        while True:
            self._claimed.clear()
            handed: list[ClaimedTask] = []
            try:
                handed = await self.app.backend.wait_for_work(self.queues, self.idle_timeout,
                                                              self._waiter())
            except Exception as exc:
                log.warning("waiting for work failed: %s", exc)
                await asyncio.sleep(FAILURE_BACKOFF_SECONDS)
            if handed:
                # Claimed for this worker by the enqueue itself: start it from here, and wait
                # again at once (no token was taken, so there is no claim to wait for).
                self._take(handed, keeper=False)
                self._start_from_buffer()
                # Let the task's thread have the GIL first: this loop would otherwise hold it
                # while it makes its next offer (~0.1-0.2 ms of redis-py), and the task would
                # start only then. A timer, not sleep(0): only a blocking poll lets go of it.
                # The lease keeper learns of the lease only after it: the pipe write wakes the
                # keeper's process, one more for the two cores while the thread waits for one.
                try:
                    if not _cancel_lost():
                        await asyncio.sleep(HANDOFF_YIELD_SECONDS)
                finally:
                    self._heartbeat.leases_claimed(handed)
            if _cancel_lost():
                return
            if handed:
                continue
            self._work_pending = True
            self._wake.set()
            await self._claimed.wait()

    async def _watch_for_urgent(self) -> None:
        """Claim announced urgent work at once: when the backend says a task went ahead of all
        waiting work and it also outranks everything in the buffer, an urgent claim runs from
        here, beside whatever claim the fetch loop has in flight, and what it brings starts
        at the next free slot, before the buffered tasks."""
        assert self._stop is not None
        while not self._stop.is_set():
            try:
                priority = await self.app.backend.wait_for_urgent(self.queues,
                                                                  self.idle_timeout)
            except Exception as exc:
                log.warning("waiting for urgent work failed: %s", exc)
                await asyncio.sleep(1.0)
                continue
            if _cancel_lost():
                return
            if priority is None or self._stop.is_set():
                continue
            top = self._buffer.top_priority()
            if top is not None and priority <= top:
                continue  # the buffer already holds work as urgent: it is next anyway
            limit = self.urgent_limit + min(self._room(), 0)
            if limit > 0:
                # Its own task, so that a stop meanwhile waits for it (_fetch_loop) instead of
                # cancelling it: a reply lost to a cancellation would leave tasks leased.
                self._urgent_claim = asyncio.create_task(
                    self._claim(limit, min_priority=priority if top is None else top + 1))
                await asyncio.shield(self._urgent_claim)
                self._start_from_buffer()

    async def _fill(self) -> bool | None:
        """Claim when enough capacity is free to make a batch worth a round trip, or, when work
        has arrived, whatever room there is (at most every ``claim_interval``): an urgent task
        then waits for one small claim, not for half the prefetch to drain. With no room at all,
        newly arrived work is still claimed if it would overtake everything the buffer holds
        (an urgent claim: only tasks above the buffer's top priority, a few past the bound).
        Where the backend announces urgent arrivals, ``_watch_for_urgent`` claims them at once;
        here urgent claims are the fallback, on plain wake-ups, backing off while they find
        nothing.

        Returns whether to claim again at once (the claim came back full: there may be more),
        or None when the backend failed. A claim that came back short drained the queues: the
        next one waits for a wake-up or a free slot, instead of a round trip that finds nothing
        while a task just handed to a thread waits for the loop to let go of the GIL.
        """
        assert self._loop is not None and self._claimed is not None
        capacity = self.concurrency + self.prefetch
        room = self._room()
        now = self._loop.time()
        arrived = self._work_pending and now - self._last_claim >= self.claim_interval
        min_priority = oldest = 0
        if room <= 0 or (self._buffer and room < capacity // 2 and not arrived):
            top = self._buffer.top_priority()
            spare = self.urgent_limit + min(room, 0)  # how far past the bound we may still go
            if top is None or top >= PRIORITIES - 1 or spare <= 0:
                return False
            if not self.urgent_fallback or not self._work_pending:
                return False
            # Arrived, but too soon after the last claim (or the last fallback): look again
            # then, not only when a slot frees (long tasks may hold them all).
            due = max(self._last_claim + self.claim_interval, self._next_urgent)
            if now < due:
                self._recheck_at(due)
                return False
            min_priority, room = top + 1, spare
        else:
            room = min(room, self._claim_limit or room)
            self._share_credit += room * self.app.starvation_share
            oldest = int(self._share_credit)
            self._share_credit -= oldest
        self._work_pending = False
        try:
            claimed = await self._claim(room, oldest, min_priority)
        finally:
            self._last_claim = self._loop.time()
            self._claimed.set()
            if self._watch is not None:
                self._watch.claimed()
        if claimed is None:
            await asyncio.sleep(1.0)
            return None
        if min_priority:
            # The wake-up signal says "work exists", which it always does behind a backlog:
            # an urgent claim that finds nothing waits twice as long before the next one
            # (up to URGENT_BACKOFF_MAX), so a draining worker does not spend its loop on them.
            self._urgent_backoff = (self.claim_interval if claimed else
                                    min(URGENT_BACKOFF_MAX, self._urgent_backoff * 2))
            self._next_urgent = self._loop.time() + self._urgent_backoff
        elif len(claimed) < room:
            # The queues ran dry, which drops their wake-up tokens: the next wake-up is real
            # news, so the fallback need not wait out a backoff grown during the backlog.
            self._urgent_backoff, self._next_urgent = self.claim_interval, 0.0
        return bool(claimed) and (min_priority > 0 or len(claimed) >= room)

    def _room(self) -> int:
        """Tasks the worker may still take on: its slots and prefetch, less what it holds
        (negative after urgent claims went past the bound)."""
        return self.concurrency + self.prefetch - len(self._running) - len(self._buffer)

    async def _claim(self, limit: int, oldest: int = 0, min_priority: int = 0
                     ) -> list[ClaimedTask] | None:
        """One claim into the buffer (None when the backend failed, which is logged)."""
        queues = self.queues[self._rotation:] + self.queues[:self._rotation]
        self._rotation = (self._rotation + 1) % len(self.queues)
        try:
            claimed = await self.app.backend.aexecute(Claim(
                self.id, queues, limit, self.lease, oldest_first=oldest,
                min_priority=min_priority,
            ))
        except Exception as exc:
            log.warning("claim failed, retrying in 1s: %s", exc)
            return None
        self._take(claimed)
        return claimed

    def _take(self, claimed: list[ClaimedTask], *, keeper: bool = True) -> None:
        """Tasks leased to this worker (claimed, or handed over) join the buffer; the lease
        keeper hears of them here unless the caller tells it later (``keeper``)."""
        self._buffer.extend(claimed)
        if claimed:
            self._metrics.claimed(claimed)
            if keeper:
                self._heartbeat.leases_claimed(claimed)

    def _waiter(self) -> Waiter:
        """This worker as it waits for work: open to a hand-off while it could start a task
        at once."""
        open_ = (not self._buffer and len(self._running) + self._reserved < self.concurrency
                 and not self._stop_requested)
        return Waiter(self.id, self.lease, open_)

    def _recheck_at(self, when: float) -> None:
        """Wake the fetch loop at ``when`` (loop time), unless a wake-up is due before then."""
        assert self._loop is not None
        if self._recheck is not None:
            if self._recheck.when() <= when:
                return
            self._recheck.cancel()
        self._recheck = self._loop.call_at(when, self._recheck_due)

    def _recheck_due(self) -> None:
        self._recheck = None
        if self._wake is not None:
            self._wake.set()

    def _start_from_buffer(self) -> None:
        if self._stop is not None and self._stop.is_set():
            return  # stopping: what is still buffered goes back to the queue unstarted
        while self._buffer and self._reserve_slot():
            claimed = self._buffer.pop()
            try:
                if claimed.id in self._lost:
                    self._lost.discard(claimed.id)
                    self._metrics.forget(claimed.id)
                    continue
                self._unsettled += 1
                self._start(claimed)
            finally:
                with self._slots:
                    self._reserved -= 1

    def _start(self, claimed: ClaimedTask) -> None:
        prepared = self._executor.prepare(claimed)
        if isinstance(prepared, Outcome):  # a malformed or unknown message: straight to the DLQ
            self._finish(claimed, prepared)
            return
        self._metrics.started(claimed)
        if prepared.lane != "thread":
            self._running[claimed.id] = (claimed, asyncio.create_task(self._execute(prepared)))
            self._busy.set(len(self._running))
            return
        self._track_in_thread(prepared)
        self._executor.start_in_thread(prepared, partial(self._thread_finished, claimed))

    def _track_in_thread(self, prepared: Prepared) -> None:
        """A task that runs (or is about to) in a pool thread, as running: its future, which
        its outcome settles, and its timeout's timer. Whichever started it, loop or waiting
        thread, it counts in ``_running`` from here (before its reservation is given back:
        counted twice a moment, never zero times)."""
        assert self._loop is not None
        claimed = prepared.claimed
        done = self._loop.create_future()
        self._running[claimed.id] = (claimed, done)
        self._busy.set(len(self._running))
        if prepared.timeout is not None:
            self._overrun_timers[claimed.id] = self._loop.call_later(
                prepared.timeout, self._thread_overran, prepared, done)

    async def _execute(self, prepared: Prepared) -> None:
        try:
            outcome = await self._executor.run(prepared)
        except asyncio.CancelledError:
            self._running.pop(prepared.claimed.id, None)
            self._slot_freed()
            raise
        self._finish(prepared.claimed, outcome)

    def _thread_finished(self, claimed: ClaimedTask, outcome: Outcome) -> None:
        """Called in the pool thread. Outcomes are handed to the loop in batches: one wake-up
        of the loop for however many threads finished meanwhile."""
        self._thread_outcomes.append((claimed, outcome))
        self._schedule_drain()

    def _schedule_drain(self) -> None:
        if not self._drain_scheduled and self._loop is not None:
            self._drain_scheduled = True
            with contextlib.suppress(RuntimeError):  # the loop is gone: the worker stopped
                self._loop.call_soon_threadsafe(self._drain_thread_outcomes)

    def _drain_thread_outcomes(self) -> None:
        self._drain_scheduled = False
        while self._thread_outcomes:
            claimed, outcome = self._thread_outcomes.popleft()
            if isinstance(outcome, Prepared):
                self._started_in_thread(outcome)
                continue
            entry = self._running.get(claimed.id)
            if entry is None or entry[0] is not claimed or entry[1].done():
                continue  # timed out (or abandoned at shutdown) before the thread returned
            entry[1].set_result(None)
            if (timer := self._overrun_timers.pop(claimed.id, None)) is not None:
                timer.cancel()
            self._finish(claimed, outcome)
        # Refill the freed slots now: the fetch loop may be waiting for a claim's reply.
        self._start_from_buffer()

    def _thread_overran(self, prepared: Prepared, done: asyncio.Future[None]) -> None:
        self._overrun_timers.pop(prepared.claimed.id, None)
        if done.done():
            return
        done.set_result(None)
        self._finish(prepared.claimed, self._executor.timed_out_in_thread(prepared))

    def _finish(self, claimed: ClaimedTask, outcome: Outcome) -> None:
        entry = self._running.get(claimed.id)
        if entry is not None and entry[0] is claimed:
            del self._running[claimed.id]
            self._slot_freed()
        if claimed.id in self._abandoned:
            return
        self._lost.discard(claimed.id)
        task = self.app.tasks.get(claimed.name)
        retry = task.retry if task is not None else NO_RETRY
        ending = transition(claimed, outcome, retry, self.app.max_worker_lost,
                            self._metrics.started_at(claimed))
        sample = self._metrics.sample(claimed, ending)
        if outcome.settled:  # transactional (PostgreSQL): its own transaction recorded the end
            if sample is not None and isinstance(ending, Completion):
                self._metrics.add(sample)
            self._settled(1)
            self.processed += 1
            return
        self._finisher.add(ending, sample)
        self.processed += 1

    def _slot_freed(self) -> None:
        self._busy.set(len(self._running))
        if self._wake is not None:
            self._wake.set()

    async def _idle(self) -> None:
        """Sleep until work arrives (the watcher), a stop, or the next delayed task falls due.
        The due time is read while already listening: work that arrives meanwhile is claimed
        at once, not after that read (the read then finishes unheeded)."""
        assert self._wake is not None
        reading = self._due_reading
        if reading is None or reading.done():  # one read in flight at most: each holds two
            reading = self._due_reading = asyncio.ensure_future(self._seconds_to_next_due())
            reading.add_done_callback(_retrieve)  # pool connections, acks need them too
        waking = asyncio.ensure_future(self._wake.wait())
        either: list[asyncio.Future[Any]] = [reading, waking]
        try:
            await asyncio.wait(either, timeout=self.idle_timeout,
                               return_when=asyncio.FIRST_COMPLETED)
            if waking.done() or not reading.done():
                return
        finally:
            waking.cancel()
        timeout = reading.result()
        if timeout <= 0:
            return
        # A timer that sets the event, not wait_for: that wraps the wait in a task of its own,
        # two more turns of the loop between a wake-up and the claim it is for.
        assert self._loop is not None
        timer = self._loop.call_later(timeout, self._wake.set)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()

    async def _seconds_to_next_due(self) -> float:
        """Until the next delayed task or retry of these queues is due, at most the idle
        timeout (all of it if that cannot be read now)."""
        backend = self.app.backend
        try:
            due, now = await asyncio.gather(
                backend.aexecute(NextDueAt(self.queues)), backend.aexecute(Now())
            )
        except Exception as exc:
            log.warning("reading the next due time failed: %s", exc)
            return self.idle_timeout
        return self.idle_timeout if due is None else max(0.0, min(self.idle_timeout, due - now))

    async def _burst_done(self) -> bool:
        await self._finisher.flush()
        if self._unsettled:
            return False
        if not self.burst_wait_scheduled:
            return True
        return await self.app.backend.aexecute(NextDueAt(self.queues)) is None

    def _settled(self, count: int) -> None:
        self._unsettled -= count

    # -- leases ----------------------------------------------------------------------------------

    def _leases(self) -> list[Lease]:
        held = [claimed for claimed, _ in self._running.values()]
        held.extend(self._buffer)
        return [Lease(c.id, c.lease_token, c.queue) for c in held if c.id not in self._lost]

    def _on_lost(self, lost: list[tuple[str, str]]) -> None:
        """Leases found lost by a heartbeat. Only attempts still held count: a task that finished
        while the heartbeat was in flight was simply acknowledged meanwhile."""
        tokens = {task_id: token for task_id, token in lost}
        held = [c for c, _ in self._running.values()] + list(self._buffer)
        gone = {c.id for c in held if tokens.get(c.id) == c.lease_token}
        if not gone:
            return
        log.warning("heartbeat: %d lease(s) lost (expired and taken over): %s",
                    len(gone), ", ".join(sorted(gone)[:5]))
        self._lost.update(gone)
        for task_id in gone:
            self._metrics.forget(task_id)
        self._buffer.discard(gone)

    # -- shutdown --------------------------------------------------------------------------------

    async def _shutdown(self) -> bool:
        backend = self.app.backend
        if self._buffer:
            unstarted = [Lease(c.id, c.lease_token, c.queue) for c in self._buffer.drain()]
            try:
                await backend.aexecute(Release(unstarted))
                log.info("released %d prefetched task(s) back to the queue", len(unstarted))
            except Exception as exc:
                log.warning("releasing prefetched tasks failed (their leases will expire): %s",
                            exc)
        running = [task for _, task in self._running.values()]
        if running and not self._cold:
            _, late = await asyncio.wait(running, timeout=self.grace)
        else:
            late = set(running)
        if not late:
            return True
        leftovers = [claimed for claimed, task in self._running.values() if task in late]
        log.warning("grace period over: %d task(s) still running are failed for a retry",
                    len(leftovers))
        for claimed in leftovers:
            self._abandoned.add(claimed.id)
            retry_left = claimed.attempts <= claimed.max_retries
            failure = Failure(
                claimed.id, claimed.lease_token,
                "WorkerShutdown: the worker stopped before the task finished",
                retry_in_seconds=0.0 if retry_left else None,
                dead_reason=None if retry_left else "max_retries",
                queue=claimed.queue, started_at=self._metrics.started_at(claimed),
            )
            self._finisher.add(failure, self._metrics.sample(claimed, failure))
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        return False


async def _cancel_and_wait(task: asyncio.Task[None]) -> None:
    """Cancel a watcher and wait for it, cancelling again while it carries on. Python 3.11's
    ``asyncio.wait_for``, which redis-py wraps around every command it sends, swallows a
    cancellation that arrives in the turn its inner future completes; the watcher then went
    on into a blocking pop of up to ``idle_timeout``, and ``conveyor worker --burst`` took 5 s
    instead of 0.5 to exit in about half of its runs on an empty queue."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=RECANCEL_SECONDS)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _cancel_lost() -> bool:
    """The current task was cancelled, but the cancellation never reached it (redis-py sends
    each command under Python 3.11's ``wait_for``, which can swallow one: see
    ``_cancel_and_wait``), and a watcher that carried on would keep the worker's shutdown
    waiting for it."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
