"""Runs one claimed task where it belongs and reports an :class:`Outcome`; never raises.

- ``async def`` tasks run on the worker's event loop; a timeout cancels them.
- plain ``def`` tasks run in the thread runner; a timeout fails the task and abandons the thread
  (Python cannot kill a thread), or in the process pool, where a timeout kills the process.
A payload that cannot be decoded, or a task name this app does not know, is rejected to the DLQ
with the reason: a bad message never takes the worker down.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from conveyor.backends.base import ClaimedTask
from conveyor.context import TaskContext, set_current_task
from conveyor.errors import SerializationError, TaskTimeout
from conveyor.model import DeadReason
from conveyor.serialization import PayloadDecodeError, decode_payload, encode_result
from conveyor.task import Task
from conveyor.worker.outcome import Outcome, format_error, raised, rejected, succeeded
from conveyor.worker.processes import ChildTimeout, ProcessPool
from conveyor.worker.threads import ThreadRunner


class Executor:
    def __init__(
        self,
        tasks: dict[str, Task[Any, Any]],
        worker_id: str,
        concurrency: int,
        pool: str,
        max_result_bytes: int,
    ) -> None:
        self.tasks = tasks
        self.worker_id = worker_id
        self.pool = pool
        self.max_result_bytes = max_result_bytes
        self.threads = ThreadRunner()
        self._process_size = concurrency
        self._processes: ProcessPool | None = None

    def close(self) -> None:
        self.threads.shutdown()
        if self._processes is not None:
            self._processes.close()

    async def run(self, claimed: ClaimedTask) -> Outcome:
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
        timeout = claimed.timeout_seconds or task.defaults.timeout
        context = TaskContext(
            id=claimed.id, name=claimed.name, queue=claimed.queue, attempt=claimed.attempts,
            max_retries=claimed.max_retries, idempotency_key=claimed.idempotency_key,
            worker_id=self.worker_id,
        )
        try:
            if task.is_async:
                value = await self._run_async(task, args, kwargs, context, timeout)
            elif task.executor == "process" or (task.executor == "default"
                                                and self.pool == "process"):
                return await self._run_in_process(task, claimed, context, timeout)
            else:
                value = await self._run_in_thread(task, args, kwargs, context, timeout)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            return raised(exc, task.retry)
        return self._encode(value)

    def _encode(self, value: Any) -> Outcome:
        try:
            return succeeded(encode_result(value, self.max_result_bytes))
        except SerializationError as exc:
            return Outcome(ok=False, error=format_error(exc), retryable=False)

    async def _run_async(
        self, task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any],
        context: TaskContext, timeout: float | None,
    ) -> Any:
        async def call() -> Any:
            set_current_task(context)
            return await task.func(*args, **kwargs)

        try:
            return await asyncio.wait_for(call(), timeout)
        except TimeoutError as exc:
            raise TaskTimeout(f"task exceeded its timeout of {timeout}s and was cancelled") \
                from exc

    async def _run_in_thread(
        self, task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any],
        context: TaskContext, timeout: float | None,
    ) -> Any:
        def call() -> Any:
            set_current_task(context)
            try:
                return task.func(*args, **kwargs)
            finally:
                set_current_task(None)

        future = asyncio.wrap_future(self.threads.submit(call))
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError as exc:
            raise TaskTimeout(
                f"task exceeded its timeout of {timeout}s; its thread was abandoned "
                f"(threads cannot be killed: use executor='process' to kill overruns)"
            ) from exc

    async def _run_in_process(
        self, task: Task[Any, Any], claimed: ClaimedTask, context: TaskContext,
        timeout: float | None,
    ) -> Outcome:
        if self._processes is None:
            paths = [p for p in sys.path if p] + [os.getcwd()]
            self._processes = ProcessPool(self._process_size, paths)
        fields = {
            "id": context.id, "name": context.name, "queue": context.queue,
            "attempt": context.attempt, "max_retries": context.max_retries,
            "idempotency_key": context.idempotency_key, "worker_id": context.worker_id,
        }
        try:
            reply = await self._processes.run(
                task.func.__module__, task.func.__qualname__, claimed.payload, fields, timeout
            )
        except ChildTimeout as exc:
            return raised(TaskTimeout(str(exc)), task.retry)
        if reply.ok:
            return succeeded(reply.result)
        return Outcome(ok=False, error=reply.error, retryable=reply.retryable,
                       worker_lost=reply.lost)

    @property
    def processes_replaced(self) -> int:
        return 0 if self._processes is None else self._processes.replaced
