"""Tasks as users declare them, and the handles enqueueing returns.

Validation and encoding happen here, before anything reaches a backend, so a refused enqueue
writes nothing and says exactly why.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar

from conveyor.backends.base import Backend, Enqueue, EnqueueOutcome, GetTasks, NewTask
from conveyor.errors import ConfigurationError, InvalidOptionError, ResultTimeout, TaskFailed
from conveyor.ids import new_task_ids
from conveyor.inspect import task_info
from conveyor.model import TaskInfo, TaskState
from conveyor.retry import DEFAULT_RETRY, Retry
from conveyor.serialization import encode_payload

if TYPE_CHECKING:
    from conveyor.app import Conveyor

P = ParamSpec("P")
R = TypeVar("R")
Executor = Literal["default", "thread", "process"]
MAX_IDEMPOTENCY_KEY_LENGTH = 255
MAX_SECONDS = 100 * 365.25 * 86400
"""The longest delay, timeout or retention: a century. Longer ones were stored and then broke
every read of their task (a due date past the year 9999 is no datetime)."""
MAX_RETRIES = 1_000_000


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """Everything about one enqueue besides its arguments."""

    queue: str
    priority: int = 5
    max_retries: int = 3
    timeout: float | None = None
    delay: float | None = None
    eta: datetime | None = None
    idempotency_key: str | None = None
    result_ttl: float = 86400.0

    def validated(self, name: str) -> TaskOptions:
        if not isinstance(self.queue, str) or not self.queue or len(self.queue) > 200 or (
            "\x00" in self.queue
        ):
            raise InvalidOptionError(
                f"task {name!r}: queue must be a non-empty name of at most 200 characters, "
                f"without NUL")
        if isinstance(self.priority, bool) or not isinstance(self.priority, int) or not (
            0 <= self.priority <= 9
        ):
            raise InvalidOptionError(
                f"task {name!r}: priority must be an integer 0-9, got {self.priority!r}"
            )
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or not (
            0 <= self.max_retries <= MAX_RETRIES
        ):
            raise InvalidOptionError(
                f"task {name!r}: max_retries must be an integer 0-{MAX_RETRIES:,}, "
                f"got {self.max_retries!r}")
        for label, value, zero_allowed in (("delay", self.delay, True),
                                           ("timeout", self.timeout, False),
                                           ("result_ttl", self.result_ttl, True)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                (value >= 0 if zero_allowed else value > 0) and value <= MAX_SECONDS
            ):  # NaN fails both comparisons; infinity the second
                raise InvalidOptionError(
                    f"task {name!r}: {label} must be a number of seconds "
                    f"{'>= 0' if zero_allowed else '> 0'}, at most a century, got {value!r}"
                )
        if self.eta is not None and not isinstance(self.eta, datetime):
            raise InvalidOptionError(f"task {name!r}: eta must be a datetime, got {self.eta!r}")
        if self.delay is not None and self.eta is not None:
            raise InvalidOptionError(f"task {name!r}: give delay or eta, not both")
        key = self.idempotency_key
        if key is not None and (
            not isinstance(key, str) or not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH
            or "\x00" in key
        ):
            raise InvalidOptionError(
                f"task {name!r}: idempotency_key must be a non-empty string of at most "
                f"{MAX_IDEMPOTENCY_KEY_LENGTH} characters, without NUL"
            )
        return self

    def eta_epoch(self) -> float | None:
        if self.eta is None:
            return None
        eta = self.eta if self.eta.tzinfo is not None else self.eta.replace(tzinfo=UTC)
        return eta.timestamp()


class Task(Generic[P, R]):
    """A function registered with an app. Calling it runs it here; ``enqueue`` sends it."""

    def __init__(
        self,
        app: Conveyor,
        func: Callable[P, R],
        *,
        name: str,
        options: TaskOptions,
        retry: Retry = DEFAULT_RETRY,
        executor: Executor = "default",
        transactional: bool = False,
    ) -> None:
        self.app = app
        self.func = func
        self.name = name
        self.defaults = options.validated(name)
        self.retry = retry
        self.executor = executor
        self.transactional = transactional
        """PostgreSQL: the task runs on ``current_task().connection``, in the transaction that
        also marks it DONE."""
        self.is_async = inspect.iscoroutinefunction(func)
        self.__doc__ = func.__doc__
        self.__wrapped__ = func

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.defaults.queue}>"

    def options(
        self,
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay: float | None = None,
        eta: datetime | None = None,
        idempotency_key: str | None = None,
        max_retries: int | None = None,
        timeout: float | None = None,
        result_ttl: float | None = None,
        connection: Any = None,
    ) -> BoundTask[P, R]:
        """The same task with some enqueue options changed for the calls made through it.

        ``connection`` (PostgreSQL): a psycopg connection whose open transaction the enqueue
        joins (see :meth:`BoundTask.enqueue_many`)."""
        changes: dict[str, Any] = {
            key: value
            for key, value in (
                ("queue", queue), ("priority", priority), ("delay", delay), ("eta", eta),
                ("idempotency_key", idempotency_key), ("max_retries", max_retries),
                ("timeout", timeout), ("result_ttl", result_ttl),
            )
            if value is not None
        }
        bound = replace(self.defaults, **changes).validated(self.name)
        return BoundTask(self, bound, connection)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> TaskHandle[R]:
        """Send one call. The keyword ``connection`` is reserved: see ``enqueue_many``."""
        return BoundTask(self, self.defaults).enqueue(*args, **kwargs)

    async def aenqueue(self, *args: P.args, **kwargs: P.kwargs) -> TaskHandle[R]:
        return await BoundTask(self, self.defaults).aenqueue(*args, **kwargs)

    def enqueue_many(
        self, calls: Iterable[tuple[Sequence[Any], dict[str, Any]]], *, connection: Any = None
    ) -> list[TaskHandle[R]]:
        return BoundTask(self, self.defaults, connection).enqueue_many(calls)

    async def aenqueue_many(
        self, calls: Iterable[tuple[Sequence[Any], dict[str, Any]]], *, connection: Any = None
    ) -> list[TaskHandle[R]]:
        return await BoundTask(self, self.defaults, connection).aenqueue_many(calls)


@dataclass(frozen=True, slots=True)
class BoundTask(Generic[P, R]):
    """A task with its enqueue options fixed: what ``Task.options(...)`` returns."""

    task: Task[P, R]
    opts: TaskOptions
    connection: Any = None
    """Transactional enqueue (PostgreSQL): the caller's psycopg connection."""

    def _new_tasks(self, calls: Sequence[Any]) -> list[NewTask]:
        """Validate and encode ``calls``; everything the options decide is computed once per
        batch, and the ids are made together (a bulk enqueue's Python time is this loop)."""
        opts, name = self.opts, self.task.name
        limit = self.task.app.max_payload_bytes
        delay, eta = opts.delay or 0.0, opts.eta_epoch()
        tasks = []
        for index, (call, task_id) in enumerate(zip(calls, new_task_ids(len(calls)),
                                                    strict=True)):
            if not isinstance(call, tuple | list) or len(call) != 2:
                raise InvalidOptionError(
                    f"task {name!r}: enqueue_many item {index} must be an (args, kwargs) pair"
                )
            args, kwargs = call
            if not isinstance(args, list | tuple):
                raise InvalidOptionError(f"task {name!r}: args must be a list or tuple")
            if not isinstance(kwargs, dict):
                raise InvalidOptionError(f"task {name!r}: kwargs must be a dict")
            tasks.append(NewTask(
                task_id, name, opts.queue, encode_payload(name, tuple(args), kwargs, limit),
                opts.priority, opts.max_retries, delay, eta, opts.idempotency_key,
                opts.timeout, opts.result_ttl,
            ))
        return tasks

    def _prepare(self, calls: Iterable[tuple[Sequence[Any], dict[str, Any]]]) -> list[NewTask]:
        tasks = self._new_tasks(calls if isinstance(calls, list | tuple) else list(calls))
        if self.opts.idempotency_key is not None and len(tasks) > 1:
            raise InvalidOptionError(
                "one idempotency key cannot cover several tasks of one enqueue_many call"
            )
        return tasks

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> TaskHandle[R]:
        connection = kwargs.pop("connection", self.connection)
        return self.enqueue_many([(args, dict(kwargs))], connection=connection)[0]

    async def aenqueue(self, *args: P.args, **kwargs: P.kwargs) -> TaskHandle[R]:
        connection = kwargs.pop("connection", self.connection)
        return (await self.aenqueue_many([(args, dict(kwargs))], connection=connection))[0]

    def enqueue_many(
        self, calls: Iterable[tuple[Sequence[Any], dict[str, Any]]], *, connection: Any = None
    ) -> list[TaskHandle[R]]:
        """Send many calls in one write. With ``connection`` (a psycopg connection, PostgreSQL
        only) the tasks are written inside that connection's open transaction and nothing is
        committed: they exist once the caller commits, and never if it rolls back."""
        tasks = self._prepare(calls)
        if not tasks:
            return []
        outcomes = enqueue_on(self.task.app.backend, tasks, connection or self.connection)
        return [TaskHandle(self.task.app, o.id, created=o.created, queue=t.queue)
                for o, t in zip(outcomes, tasks, strict=True)]

    async def aenqueue_many(
        self, calls: Iterable[tuple[Sequence[Any], dict[str, Any]]], *, connection: Any = None
    ) -> list[TaskHandle[R]]:
        """:meth:`enqueue_many` from async code (``connection``: a psycopg AsyncConnection)."""
        tasks = self._prepare(calls)
        if not tasks:
            return []
        backend, op = self.task.app.backend, Enqueue(tasks)
        connection = connection or self.connection
        if connection is None:
            outcomes = await backend.aexecute(op)
        else:
            outcomes = await _joining(backend, "aexecute_on")(connection, op)
        return [TaskHandle(self.task.app, o.id, created=o.created, queue=t.queue)
                for o, t in zip(outcomes, tasks, strict=True)]


def enqueue_on(backend: Backend, tasks: list[NewTask], connection: Any) -> list[EnqueueOutcome]:
    """Enqueue through the backend, or inside the caller's transaction on ``connection``."""
    if connection is None:
        return backend.execute(Enqueue(tasks))
    return _joining(backend, "execute_on")(connection, Enqueue(tasks))  # type: ignore[no-any-return]


def _joining(backend: Backend, method: str) -> Any:
    """The backend's way of running a transition on a caller's connection, if it has one."""
    run = getattr(backend, method, None)
    if run is None:
        raise ConfigurationError(
            f"connection= (enqueue inside your transaction) needs the PostgreSQL backend, not "
            f"{backend.url.split(':', 1)[0]}"
        )
    return run


class TaskHandle(Generic[R]):
    """A reference to an enqueued task: read its state, wait for its result."""

    __slots__ = ("app", "created", "id", "queue")

    def __init__(
        self, app: Conveyor, task_id: str, *, created: bool = True, queue: str | None = None
    ) -> None:
        self.app = app
        self.id = task_id
        self.created = created
        """False when an idempotency key matched an existing task, which this handle names."""
        self.queue = queue
        """The queue it was enqueued to, if known: a hint that makes lookups cheaper."""

    def __repr__(self) -> str:
        return f"<TaskHandle {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TaskHandle) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def info(self) -> TaskInfo:
        rows = self.app.backend.execute(GetTasks([self.id], self.queue))
        if not rows:
            raise LookupError(f"task {self.id} no longer exists (pruned or purged)")
        return task_info(rows[0])

    async def ainfo(self) -> TaskInfo:
        rows = await self.app.backend.aexecute(GetTasks([self.id], self.queue))
        if not rows:
            raise LookupError(f"task {self.id} no longer exists (pruned or purged)")
        return task_info(rows[0])

    @property
    def state(self) -> TaskState:
        return self.info().state

    def result(self, timeout: float | None = None) -> R:
        """Wait until the task finishes and return its result.

        Raises :class:`TaskFailed` if it ends DEAD or CANCELLED, :class:`ResultTimeout` if
        ``timeout`` seconds pass first (``None`` waits for ever).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            info = self.info()
            if info.state.finished:
                return _outcome(info)  # type: ignore[no-any-return]
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise ResultTimeout(f"task {self.id} is still {info.state} after {timeout}s")
            self.app.backend.wait_for_change(min(left, 1.0))

    async def aresult(self, timeout: float | None = None) -> R:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.002
        while True:
            info = await self.ainfo()
            if info.state.finished:
                return _outcome(info)  # type: ignore[no-any-return]
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise ResultTimeout(f"task {self.id} is still {info.state} after {timeout}s")
            await asyncio.sleep(min(left, delay))
            delay = min(delay * 2, 0.25)


def _outcome(info: TaskInfo) -> Any:
    if info.state == TaskState.DONE:
        return info.result
    raise TaskFailed(
        f"task {info.id} ({info.name}) ended {info.state}"
        + (f" [{info.dead_reason}]" if info.dead_reason else "")
        + (f": {_last_line(info.error)}" if info.error else ""),
        state=str(info.state),
        error=info.error,
    )


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text


