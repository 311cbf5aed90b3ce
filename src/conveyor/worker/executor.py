"""Runs one claimed task where it belongs and reports an :class:`Outcome`; never raises.

- ``async def`` tasks run on the worker's event loop; a timeout cancels them.
- plain ``def`` tasks run in the thread runner; a timeout fails the task and abandons the thread
  (Python cannot kill a thread), or in the process pool, where a timeout kills the process.
A payload that cannot be decoded, or a task name this app does not know, is rejected to the DLQ
with the reason: a bad message never takes the worker down.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from conveyor.backends.base import Backend, ClaimedTask
from conveyor.context import TaskContext, set_current_task
from conveyor.errors import SerializationError, TaskTimeout
from conveyor.model import DeadReason
from conveyor.serialization import PayloadDecodeError, decode_payload, encode_result
from conveyor.task import Task
from conveyor.worker.outcome import Outcome, format_error, raised, rejected, succeeded
from conveyor.worker.threads import Job, ThreadRunner

if TYPE_CHECKING:
    from conveyor.worker.processes import ProcessPool

Lane = Literal["async", "thread", "process"]
log = logging.getLogger("conveyor.worker")


class Prepared(msgspec.Struct, frozen=True):
    """A claimed task ready to run: found in the registry, its payload decoded."""

    claimed: ClaimedTask
    task: Task[Any, Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    context: TaskContext
    timeout: float | None
    lane: Lane


def _importable(task: Task[Any, Any]) -> bool:
    """Whether a pool process can import ``task`` by module and name.

    Quarantine: a thread-lane task that lost its worker on every attempt but the last one
    allowed (``worker_lost == max_worker_lost - 1``) may be the one that ends whole processes
    (``os._exit``, a segfault in C code), so that last attempt runs in a pool process, where
    only that child dies if it does it again. The tasks that were running beside it when the
    worker went down (counted ``worker_lost`` too, though innocent) go there as well and
    succeed, instead of reaching ``max_worker_lost`` with the killer. Earlier attempts stay in
    their thread (a worker killed once is common and costs no process). Tasks defined in
    ``__main__`` or inside a function cannot be imported by a child, so they stay in the thread
    lane.
    """
    func = task.func
    return func.__module__ != "__main__" and "<locals>" not in func.__qualname__


class Executor:
    def __init__(
        self,
        tasks: dict[str, Task[Any, Any]],
        worker_id: str,
        concurrency: int,
        pool: str,
        max_result_bytes: int,
        backend: Backend | None = None,
        quarantine_after: int = 2,
    ) -> None:
        self.tasks = tasks
        self.quarantine_after = quarantine_after
        self.backend = backend
        self.worker_id = worker_id
        self.pool = pool
        self.max_result_bytes = max_result_bytes
        self.threads = ThreadRunner()
        self.thread_lane = pool == "thread" and any(
            not t.is_async and t.executor != "process" for t in tasks.values())
        """Whether tasks of this app run in pool threads (as plain ``def`` tasks do by
        default): the threads are started up front."""
        self.waits_in_thread = self.thread_lane and bool(getattr(backend, "waits_in_thread",
                                                                 False))
        """Whether the wait for work is one of those threads too (``thread_watch``): one more
        thread then, which only such a backend needs."""
        if self.thread_lane:
            self.threads.prestart(concurrency + (1 if self.waits_in_thread else 0))
        self._process_size = concurrency
        self._processes: ProcessPool | None = None

    def close(self) -> None:
        self.threads.shutdown()
        if self._processes is not None:
            self._processes.close()

    def prepare(self, claimed: ClaimedTask) -> Prepared | Outcome:
        """Find and decode the task; a message that cannot run is rejected with the reason."""
        task = self.tasks.get(claimed.name)
        if task is None:
            return rejected(
                DeadReason.UNKNOWN_TASK,
                f"UnknownTaskError: no task named {claimed.name!r} is registered in this "
                f"worker's app",
            )
        try:
            args, kwargs = decode_payload(claimed.payload)
        except PayloadDecodeError as exc:
            return rejected(DeadReason.DECODE_ERROR, f"PayloadDecodeError: {exc}")
        context = TaskContext(
            id=claimed.id, name=claimed.name, queue=claimed.queue, attempt=claimed.attempts,
            max_retries=claimed.max_retries, idempotency_key=claimed.idempotency_key,
            worker_id=self.worker_id,
        )
        if task.is_async:
            lane: Lane = "async"
        elif task.transactional:  # its connection cannot cross into a pool process
            lane = "thread"
        elif task.executor == "process" or (task.executor == "default" and self.pool == "process"):
            lane = "process"
        elif claimed.worker_lost >= self.quarantine_after and _importable(task):
            lane = "process"  # quarantine: see _importable
        else:
            lane = "thread"
        timeout = claimed.timeout_seconds or task.defaults.timeout
        return Prepared(claimed, task, args, kwargs, context, timeout, lane)

    async def run(self, prepared: Prepared) -> Outcome:
        """Run an ``async`` or ``process`` lane task to its outcome; never raises (but
        cancellation)."""
        if prepared.lane == "process":
            return await self._run_in_process(prepared)
        deadline = asyncio.timeout(prepared.timeout)
        try:
            async with deadline:
                set_current_task(prepared.context)
                value = await prepared.task.func(*prepared.args, **prepared.kwargs)
        except asyncio.CancelledError:
            raise
        except TimeoutError as exc:
            if not deadline.expired():  # raised by the task itself, not our deadline
                return raised(exc, prepared.task.retry)
            return raised(TaskTimeout(
                f"task exceeded its timeout of {prepared.timeout}s and was cancelled"
            ), prepared.task.retry)
        except BaseException as exc:
            return raised(exc, prepared.task.retry)
        return self._encode(value)

    def start_in_thread(self, prepared: Prepared, on_done: Callable[[Outcome], None]) -> None:
        """Run a plain ``def`` task in a pool thread; ``on_done`` gets the outcome, in that
        thread. No future per task: the worker batches the hand-back to its loop."""
        self.threads.submit(self.thread_job(prepared, on_done))

    def thread_job(self, prepared: Prepared, on_done: Callable[[Outcome], None]) -> Job:
        """The pool job that runs ``prepared`` (a thread that has one already may run it)."""
        task, args, kwargs, context = (
            prepared.task, prepared.args, prepared.kwargs, prepared.context
        )

        def call() -> Callable[[], None]:
            set_current_task(context)
            try:
                if task.transactional:
                    outcome = self._run_transactional(prepared)
                else:
                    outcome = self._encode(task.func(*args, **kwargs))
            except BaseException as exc:
                outcome = raised(exc, task.retry)
            finally:
                set_current_task(None)
            return partial(on_done, outcome)

        return call

    def timed_out_in_thread(self, prepared: Prepared) -> Outcome:
        return raised(TaskTimeout(
            f"task exceeded its timeout of {prepared.timeout}s; its thread was abandoned "
            f"(threads cannot be killed: use executor='process' to kill overruns)"
        ), prepared.task.retry)

    def _encode(self, value: Any) -> Outcome:
        try:
            return succeeded(encode_result(value, self.max_result_bytes))
        except SerializationError as exc:
            return Outcome(ok=False, error=format_error(exc), retryable=False)

    async def _run_in_process(self, prepared: Prepared) -> Outcome:
        # Imported here: only a worker with process-lane tasks needs multiprocessing, and its
        # import is a few milliseconds of every other worker's start.
        from conveyor.worker.processes import ChildTimeout, ProcessPool

        if self._processes is None:
            paths = [p for p in sys.path if p] + [os.getcwd()]
            self._processes = ProcessPool(self._process_size, paths)
        context, func = prepared.context, prepared.task.func
        fields = {
            "id": context.id, "name": context.name, "queue": context.queue,
            "attempt": context.attempt, "max_retries": context.max_retries,
            "idempotency_key": context.idempotency_key, "worker_id": context.worker_id,
        }
        try:
            reply = await self._processes.run(
                func.__module__, func.__qualname__, prepared.claimed.payload, fields,
                prepared.timeout,
            )
        except ChildTimeout as exc:
            return raised(TaskTimeout(str(exc)), prepared.task.retry)
        if reply.ok:
            return succeeded(reply.result)
        return Outcome(ok=False, error=reply.error, retryable=reply.retryable,
                       worker_lost=reply.lost)

    @property
    def processes_replaced(self) -> int:
        return 0 if self._processes is None else self._processes.replaced

    # -- transactional tasks (PostgreSQL) ---------------------------------------------------------

    def _run_transactional(self, prepared: Prepared) -> Outcome:
        """Run a ``transactional=True`` task (in its thread) inside the backend transaction that
        also marks it DONE, guarded by its lease token: its writes and its completion commit or
        roll back together. Its exceptions propagate (rolled back; the task is failed as usual).
        """
        run = getattr(self.backend, "run_transactional", None)
        if run is None:
            return Outcome(ok=False, retryable=False, error=(
                "ConfigurationError: transactional=True tasks need the PostgreSQL backend; this "
                f"worker's backend is {getattr(self.backend, 'url', None)!r}"
            ))
        unencodable: list[Outcome] = []

        def body(connection: Any) -> bytes | None:
            set_current_task(msgspec.structs.replace(prepared.context, connection=connection))
            outcome = self._encode(prepared.task.func(*prepared.args, **prepared.kwargs))
            if not outcome.ok:  # the result cannot be stored: roll the task's writes back
                unencodable.append(outcome)
                raise SerializationError(outcome.error or "result cannot be encoded")
            return outcome.result

        try:
            committed = run(prepared.claimed, body)
        except SerializationError:
            if unencodable:
                return unencodable[0]
            raise
        if committed:
            return Outcome(ok=True, settled=True)
        log.warning("lease lost for transactional task %s: rolled back; another worker owns it",
                    prepared.claimed.id)
        return Outcome(ok=False, error="LeaseLost", settled=True)
