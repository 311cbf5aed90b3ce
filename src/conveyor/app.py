"""The composition root: a registry of tasks bound to one backend. No module-level state."""

from __future__ import annotations

import inspect
import math
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from conveyor.backends import open_backend
from conveyor.backends.base import (
    Backend,
    Cancel,
    DeleteTasks,
    GetTasks,
    ListTasks,
    ListWorkers,
    MetricsRead,
    Now,
    PauseQueue,
    Purge,
    QueueStatsRead,
    Requeue,
)
from conveyor.errors import ConfigurationError, InvalidOptionError, UnknownTaskError
from conveyor.inspect import live_workers, task_info, worker_info
from conveyor.inspect import stats as build_stats
from conveyor.metrics.alerts import AlertRule, Breach, evaluate
from conveyor.metrics.read import window_minutes
from conveyor.model import Stats, TaskInfo, TaskState, WorkerInfo
from conveyor.retry import DEFAULT_RETRY, Retry
from conveyor.schedule import Misfire, Schedule, validate
from conveyor.serialization import DEFAULT_MAX_PAYLOAD_BYTES
from conveyor.task import Executor, Task, TaskHandle, TaskOptions, enqueue_on

if TYPE_CHECKING:
    from conveyor.worker.worker import Worker

P = ParamSpec("P")
R = TypeVar("R")
DEFAULT_URL = "sqlite:///conveyor.db"


class Conveyor:
    """A task queue application: declare tasks on it, enqueue them, run workers for it.

    ``url`` picks the backend (``CONVEYOR_URL`` overrides the default, not an explicit URL).
    ``lease`` is how long a claimed task stays with its worker without a heartbeat before
    another worker may take it; heartbeats extend it every ``lease / 3`` seconds.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        lease: float = 30.0,
        default_queue: str = "default",
        max_worker_lost: int = 3,
        starvation_share: float = 0.1,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        result_ttl: float = 86400.0,
        backend_options: dict[str, Any] | None = None,
    ) -> None:
        if not _finite_number(lease) or lease <= 0:
            raise ConfigurationError("lease must be a finite number of seconds > 0")
        if not _finite_number(starvation_share) or not 0.0 <= starvation_share <= 0.5:
            raise ConfigurationError("starvation_share must be between 0 and 0.5")
        if not isinstance(max_worker_lost, int) or max_worker_lost < 1:
            raise ConfigurationError("max_worker_lost must be an integer >= 1")
        if not isinstance(max_payload_bytes, int) or max_payload_bytes < 1:
            raise ConfigurationError("max_payload_bytes must be an integer >= 1")
        if not _finite_number(result_ttl) or result_ttl < 0:
            raise ConfigurationError("result_ttl must be a finite number of seconds >= 0")
        self.url = url or os.environ.get("CONVEYOR_URL") or DEFAULT_URL
        self.lease = float(lease)
        self.default_queue = default_queue
        self.max_worker_lost = max_worker_lost
        self.starvation_share = starvation_share
        self.max_payload_bytes = max_payload_bytes
        self.result_ttl = result_ttl
        self.tasks: dict[str, Task[Any, Any]] = {}
        self.schedules: dict[str, Schedule] = {}
        self.alerts: list[AlertRule] = []
        self.backend_options: dict[str, Any] = backend_options or {}
        self.run_until_idle_waits = True
        """Whether ``run_until_idle`` waits for delayed work by default (not on a fake clock)."""
        self.partitions: dict[str, int] = {}
        """Queues declared with ``declare_queue``: name -> partition count."""
        self._backend: Backend | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Conveyor {self.url} tasks={len(self.tasks)}>"

    # -- configuration ---------------------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        """Opened on first use, so importing an app module never touches the network."""
        if self._backend is None:
            with self._lock:
                if self._backend is None:
                    backend = open_backend(self.url, **self.backend_options)
                    for queue, partitions in self.partitions.items():
                        backend.declare_queue(queue, partitions)
                    self._backend = backend
        return self._backend

    def declare_queue(self, name: str, *, partitions: int = 1) -> None:
        """Split queue ``name`` into ``partitions`` partitions, so one hot queue spreads over
        the shards of a Redis Cluster (each partition is a hash tag of its own). Producers
        spread its tasks over the partitions (a task with an idempotency key always goes to
        the same one); workers serving ``name`` claim from all of them in turn. On one Redis
        server partitions work the same way; SQLite and PostgreSQL accept and ignore them.
        Declare the same count in producers and workers (the largest count declared anywhere
        wins on Redis); a count cannot be lowered.
        """
        if not isinstance(partitions, int) or partitions < 1:
            raise ConfigurationError("partitions must be an integer >= 1")
        self.partitions[name] = max(partitions, self.partitions.get(name, 1))
        if self._backend is not None:
            self._backend.declare_queue(name, self.partitions[name])

    def use(self, url: str, **backend_options: Any) -> None:
        """Point the app at another backend (the CLI's ``--url``, tests)."""
        self.close()
        self.url = url
        self.backend_options = backend_options

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    # -- declaring tasks -------------------------------------------------------------------------

    @overload
    def task(self, func: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self,
        *,
        name: str | None = None,
        queue: str | None = None,
        priority: int = 5,
        max_retries: int = 3,
        timeout: float | None = None,
        retry: Retry | None = None,
        executor: Executor = "default",
        result_ttl: float | None = None,
        transactional: bool = False,
    ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(  # type: ignore[misc]
        self,
        func: Callable[P, R] | None = None,
        /,
        *,
        name: str | None = None,
        queue: str | None = None,
        priority: int = 5,
        max_retries: int = 3,
        timeout: float | None = None,
        retry: Retry | None = None,
        executor: Executor = "default",
        result_ttl: float | None = None,
        transactional: bool = False,
    ) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
        """Register a function as a task. Its name defaults to ``module.qualname``.

        ``transactional=True`` (PostgreSQL): the task runs in a worker thread with
        ``current_task().connection``, a psycopg connection whose open transaction also marks
        the task DONE (guarded by its lease), so its writes and its completion commit together
        or not at all. It must be a plain ``def`` (not in the process pool). On another backend
        the worker refuses to run it: the task goes to the DLQ (``not_retryable``) with a
        ConfigurationError, since the backend is only known when a worker runs.
        """

        def register(fn: Callable[P, R]) -> Task[P, R]:
            task_name = name or f"{fn.__module__}.{fn.__qualname__}"
            if task_name in self.tasks and self.tasks[task_name].func is not fn:
                raise ConfigurationError(f"a task named {task_name!r} is already registered")
            if executor not in ("default", "thread", "process"):
                raise ConfigurationError("executor must be 'default', 'thread' or 'process'")
            if transactional and (inspect.iscoroutinefunction(fn) or executor == "process"):
                raise ConfigurationError(
                    f"task {task_name!r}: transactional=True needs a plain def running in a "
                    f"thread (its psycopg connection cannot enter an event loop or a process)"
                )
            options = TaskOptions(
                queue=self.default_queue if queue is None else queue,
                priority=priority,
                max_retries=max_retries,
                timeout=timeout,
                result_ttl=self.result_ttl if result_ttl is None else result_ttl,
            )
            task: Task[P, R] = Task(
                self, fn, name=task_name, options=options, retry=retry or DEFAULT_RETRY,
                executor=executor, transactional=transactional,
            )
            self.tasks[task_name] = task
            return task

        return register(func) if func is not None else register

    # -- periodic tasks --------------------------------------------------------------------------

    def cron(
        self,
        expression: str,
        *,
        timezone: str = "UTC",
        name: str | None = None,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        misfire: Misfire = "skip",
        misfire_grace: float = 60.0,
        max_catch_up: int = 10,
        **task_options: Any,
    ) -> Callable[[Callable[P, R]], Task[P, R]]:
        """Run the decorated function (or task) on a cron expression (5 fields, or 6 with
        seconds), in ``timezone``. A plain function is registered as a task first, with
        ``task_options``."""

        def register(fn: Callable[P, R]) -> Task[P, R]:
            task: Task[P, R] = fn if isinstance(fn, Task) else self.task(**task_options)(fn)
            self.schedule(task, cron=expression, timezone=timezone, name=name, args=args,
                          kwargs=kwargs, misfire=misfire, misfire_grace=misfire_grace,
                          max_catch_up=max_catch_up)
            return task

        return register

    def schedule(
        self,
        task: Task[Any, Any],
        *,
        cron: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        name: str | None = None,
        timezone: str = "UTC",
        misfire: Misfire = "skip",
        misfire_grace: float = 60.0,
        max_catch_up: int = 10,
        **options: Any,
    ) -> Schedule:
        """Enqueue ``task`` with these arguments on a cron expression; ``options`` are enqueue
        options (queue, priority, ...). One leader among all schedulers enqueues each run once."""
        if task.name not in self.tasks:
            raise ConfigurationError(f"task {task.name!r} is not registered in this app")
        task.options(**options)  # refuse bad options now, not at the first run
        schedule = validate(Schedule(
            name=name or task.name, task_name=task.name, expression=cron, timezone=timezone,
            args=tuple(args), kwargs=dict(kwargs or {}), options=dict(options),
            misfire=misfire, misfire_grace_seconds=misfire_grace, max_catch_up=max_catch_up,
        ), task.func)
        existing = self.schedules.get(schedule.name)
        if existing is not None and existing != schedule:
            raise ConfigurationError(f"a different schedule named {schedule.name!r} exists")
        self.schedules[schedule.name] = schedule
        return schedule

    def alert(
        self,
        queue: str | None = None,
        *,
        max_depth: int | None = None,
        min_utilization: float | None = None,
        max_utilization: float | None = None,
        max_dead_per_minute: float | None = None,
        max_p99_seconds: float | None = None,
    ) -> AlertRule:
        """Declare alert thresholds for ``queue`` (None: every queue, each on its own); call it
        as often as needed. ``conveyor health`` checks them, ``conveyor alerts --prometheus``
        writes the same as Prometheus rules (see :mod:`conveyor.metrics.alerts`)."""
        rule = AlertRule(queue, max_depth, min_utilization, max_utilization,
                         max_dead_per_minute, max_p99_seconds)
        self.alerts.append(rule)
        return rule

    def health(self, window: float = 300.0) -> list[Breach]:
        """Every alert threshold breached now (empty: healthy)."""
        return evaluate(self.alerts, self.stats(window))

    def get_task(self, name: str) -> Task[Any, Any]:
        try:
            return self.tasks[name]
        except KeyError:
            raise UnknownTaskError(
                f"no task named {name!r} is registered in this app "
                f"(known: {', '.join(sorted(self.tasks)) or 'none'})"
            ) from None

    def enqueue(
        self, name: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> TaskHandle[Any]:
        """Enqueue a registered task by name (the CLI, or code that only knows the name).

        It goes to *this* app's backend, even for a task first registered on another app.
        """
        task = self.get_task(name)
        bound = task.options(**options)
        new_tasks = bound._prepare([(tuple(args), dict(kwargs or {}))])
        outcome = enqueue_on(self.backend, new_tasks, bound.connection)[0]
        return TaskHandle(self, outcome.id, created=outcome.created, queue=new_tasks[0].queue)

    # -- reading and operating -------------------------------------------------------------------

    def get(self, task_id: str) -> TaskInfo | None:
        rows = self.backend.execute(GetTasks([task_id]))
        return task_info(rows[0]) if rows else None

    def handle(self, task_id: str) -> TaskHandle[Any]:
        return TaskHandle(self, task_id)

    def list_tasks(
        self, queue: str | None = None, state: TaskState | str | None = None,
        limit: int = 100, offset: int = 0,
    ) -> list[TaskInfo]:
        state_name = None if state is None else str(_state(state))
        rows = self.backend.execute(ListTasks(queue, state_name, limit, offset))
        return [task_info(row) for row in rows]

    def stats(self, window: float = 300.0) -> Stats:
        """Depth per queue and state, workers and utilization, and over the last ``window``
        seconds (whole minutes of the backend's clock): counts of enqueued / succeeded /
        failed / retried / dead / expired tasks, wait and latency percentiles, one point per
        minute. Cluster-wide: every figure is read from the backend."""
        counts = self.backend.execute(QueueStatsRead())
        now = self.backend.execute(Now())
        workers = live_workers(self.backend.execute(ListWorkers()), now)
        first, last = window_minutes(now, window)
        metrics = self.backend.execute(MetricsRead(first, last))
        return build_stats(counts, workers, now, metrics, (first, last))

    def workers(self) -> list[WorkerInfo]:
        now = self.backend.execute(Now())
        return [worker_info(w) for w in live_workers(self.backend.execute(ListWorkers()), now)]

    def dead(self, queue: str | None = None, limit: int = 100) -> list[TaskInfo]:
        """The dead-letter queue: tasks that ended DEAD, oldest first."""
        return self.list_tasks(queue=queue, state=TaskState.DEAD, limit=limit)

    def requeue(self, ids: str | Iterable[str]) -> list[str]:
        """DEAD or CANCELLED tasks back to PENDING with attempts reset; returns those moved."""
        return self.backend.execute(Requeue([ids] if isinstance(ids, str) else list(ids)))

    def purge(self, queue: str | None, state: TaskState | str = TaskState.DEAD) -> int:
        """Delete every task of ``queue`` (all queues when None) in ``state``; returns the count.

        RUNNING tasks cannot be purged: their worker still holds them.
        """
        target = _state(state)
        if target == TaskState.RUNNING:
            raise InvalidOptionError("RUNNING tasks cannot be purged; cancel or wait for them")
        return self.backend.execute(Purge(queue, str(target)))

    def delete(self, ids: str | Iterable[str]) -> list[str]:
        """Delete tasks by id, in any state but RUNNING; returns the ids deleted.

        A RUNNING task is skipped (its worker holds it, and would find it gone when it
        reports): cancel is not possible either, so delete it once it has finished. Unknown
        ids are skipped too. An idempotency key of a deleted task is free again: the next
        enqueue with it creates a new task. Atomic per call on SQLite and PostgreSQL, and on
        one Redis server; on Redis Cluster atomic per queue (partition).
        """
        return self.backend.execute(DeleteTasks([ids] if isinstance(ids, str) else list(ids)))

    def pause(self, queue: str) -> None:
        """Stop every worker from claiming from ``queue`` (its tasks stay; running ones
        finish). Checked inside each claim on every backend, so it holds from the next claim."""
        self.backend.execute(PauseQueue(queue, True))

    def resume(self, queue: str) -> None:
        """Let workers claim from ``queue`` again (idle workers are woken)."""
        self.backend.execute(PauseQueue(queue, False))

    def paused_queues(self) -> set[str]:
        return {c.queue for c in self.backend.execute(QueueStatsRead()) if c.paused}

    def cancel(self, task_id: str) -> bool:
        """Cancel a task that has not started; False if it is running or finished."""
        return bool(self.backend.execute(Cancel([task_id])))

    # -- running ---------------------------------------------------------------------------------

    def worker(self, queues: Sequence[str] | None = None, **options: Any) -> Worker:
        from conveyor.worker.worker import Worker

        return Worker(self, queues=queues, **options)

    def run_until_idle(
        self, queues: Sequence[str] | None = None, *, wait_scheduled: bool | None = None,
        timeout: float = 60.0, **options: Any,
    ) -> None:
        """Run a worker in this thread until no task is left to run (tests, scripts).

        With ``wait_scheduled`` (the default, except under :mod:`conveyor.testing`'s fake clock)
        it also waits for delayed tasks and retries of these queues.
        """
        wait = self.run_until_idle_waits if wait_scheduled is None else wait_scheduled
        worker = self.worker(queues, burst=True, burst_wait_scheduled=wait, **options)
        worker.run(timeout=timeout)

    def all_queues(self) -> list[str]:
        """Every queue a registered task uses by default."""
        return sorted({t.defaults.queue for t in self.tasks.values()})


def _state(state: TaskState | str) -> TaskState:
    try:
        return TaskState(str(state).upper())
    except ValueError:
        raise InvalidOptionError(
            f"unknown state {state!r}; one of {', '.join(s.value for s in TaskState)}"
        ) from None


def _finite_number(value: object) -> bool:
    """A real number that is not NaN or infinite (``bool`` excluded: ``lease=True`` is a slip)."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))
