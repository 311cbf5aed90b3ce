"""The embedded default: one SQLite file in WAL mode, shared by any number of local processes.

Each transition is one ``BEGIN IMMEDIATE`` transaction running the statements kept in
``queries/``. Writers take the database lock up front (IMMEDIATE), so two processes never
deadlock upgrading a read to a write; ``busy_timeout`` queues them instead.

Time: SQLite has no server, so "the backend's clock" is this host's clock, read once per
transaction and passed as ``:now``. That keeps every statement deterministic and lets tests
inject a clock. The database must therefore live on one host (as SQLite requires anyway).

Wake-ups: ``PRAGMA data_version`` changes whenever another connection commits; an idle worker
polls it (a read of shared memory, microseconds) and claims only when something changed, or when
the next delayed task falls due.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from conveyor.backends import base
from conveyor.backends.queryfiles import load_migrations, load_queries
from conveyor.errors import BackendUnavailable, ConfigurationError

T = TypeVar("T")

QUERIES = load_queries("conveyor.backends.sqlite")
MIGRATIONS = load_migrations("conveyor.backends.sqlite")
POLL_INTERVAL_SECONDS = 0.002
LOCK_RETRY_SECONDS = 0.001
LOCK_WAIT_MS = 3
"""Taking the write lock: SQLite's own busy handler waits at most this long per attempt (it
sleeps 1 ms, then 2), then ``_begin`` sleeps ``LOCK_RETRY_SECONDS`` and tries again, up to the
backend's busy timeout. Left to itself the handler backs off to 100 ms between attempts, and a
producer waiting behind two workers that take the lock again every few milliseconds found it
free only by chance: an enqueue waited 0.7 s while a 10,000-task backlog drained."""
_SYNCHRONOUS_MODES = {"OFF", "NORMAL", "FULL", "EXTRA"}


def parse_sqlite_url(url: str) -> str:
    """``sqlite:///rel.db`` -> ``rel.db``; ``sqlite:////abs.db`` -> ``/abs.db``; ``:memory:``."""
    if not url.startswith("sqlite:"):
        raise ConfigurationError(f"not a sqlite URL: {url!r}")
    rest = url[len("sqlite:") :]
    if rest in ("", "//", "//:memory:", ":memory:", "///:memory:"):
        return ":memory:"
    if not rest.startswith("///"):
        raise ConfigurationError(
            f"sqlite URL must look like sqlite:///relative.db or sqlite:////absolute.db: {url!r}"
        )
    path = rest[3:].split("?", 1)[0]
    if not path:
        raise ConfigurationError(f"sqlite URL has no path: {url!r}")
    return path


class SQLiteBackend:
    """A :class:`~conveyor.backends.base.Backend` on one SQLite file."""

    signals_priority = False
    claim_batch: int | None = None

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] = time.time,
        synchronous: str = "FULL",
        busy_timeout_seconds: float = 30.0,
    ) -> None:
        self.url = url
        self.path = parse_sqlite_url(url)
        if synchronous.upper() not in _SYNCHRONOUS_MODES:
            raise ConfigurationError(f"synchronous must be one of {sorted(_SYNCHRONOUS_MODES)}")
        self.clock = clock
        self._synchronous = synchronous.upper()
        self._busy_timeout = busy_timeout_seconds
        self._lock = threading.RLock()
        self._pid = -1
        self._connection: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._local_writes = 0
        self._local_commits = 0
        self._version_at_claim: tuple[int, int] | None = None
        self._handlers: dict[type[Any], Callable[[sqlite3.Connection, Any, float], Any]] = {
            base.Enqueue: self._enqueue,
            base.Claim: self._claim,
            base.Complete: self._per_row("complete", lambda op: op.completions, _completion_params),
            base.Fail: self._per_row("fail", lambda op: op.failures, _failure_params),
            base.Extend: self._extend,
            base.Release: self._per_row("release", lambda op: op.leases, _lease_params),
            base.RecoverExpired: self._recover_expired,
            base.Cancel: self._cancel,
            base.Requeue: self._by_ids("requeue"),
            base.Purge: self._purge,
            base.DeleteTasks: self._by_ids("delete_tasks"),
            base.Prune: self._prune,
            base.PauseQueue: self._pause_queue,
            base.RecordMetrics: self._record_metrics,
            base.MetricsRead: self._metrics_read,
            base.RegisterWorker: self._register_worker,
            base.UnregisterWorker: self._unregister_worker,
            base.AcquireLock: self._acquire_lock,
            base.ReleaseLock: self._release_lock,
            base.RecordScheduleRun: self._record_schedule_run,
            base.GetScheduleRuns: self._get_schedule_runs,
            base.GetTasks: self._get_tasks,
            base.ListTasks: self._list_tasks,
            base.QueueStatsRead: self._queue_stats,
            base.ListWorkers: self._list_workers,
            base.NextDueAt: self._next_due_at,
            base.Now: lambda conn, op, now: now,
        }
        self._readonly = {
            base.GetTasks, base.ListTasks, base.QueueStatsRead, base.ListWorkers,
            base.NextDueAt, base.Now, base.GetScheduleRuns, base.MetricsRead,
        }
        self._wakes_workers = {base.Enqueue, base.Fail, base.Release, base.Requeue,
                               base.RecoverExpired, base.PauseQueue}

    # -- runners ---------------------------------------------------------------------------------

    def execute(self, op: base.Transition[T]) -> T:
        handler = self._handlers.get(type(op))
        if handler is None:
            raise NotImplementedError(f"{type(op).__name__} is not supported by SQLiteBackend")
        with self._lock:
            conn = self._connect()
            now = self.clock()
            if type(op) in self._readonly:
                return cast(T, handler(conn, op, now))
            if type(op) is base.Claim:
                # A wake-up that lands between this claim and the next wait must not be lost.
                self._version_at_claim = self._version(work_only=True)
            with self._transaction(conn):
                result = handler(conn, op, now)
            self._local_commits += 1
            if type(op) in self._wakes_workers:
                self._local_writes += 1
            return cast(T, result)

    async def aexecute(self, op: base.Transition[T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread(), self.execute, op)

    async def wait_for_work(self, queues: Sequence[str], timeout: float,
                            waiter: base.Waiter | None = None) -> list[base.ClaimedTask]:
        """Polls the database's change counter. Hands nothing over (returns an empty list)."""
        deadline = time.monotonic() + timeout
        start = self._version_at_claim or self._version(work_only=True)
        while time.monotonic() < deadline:
            await asyncio.sleep(min(POLL_INTERVAL_SECONDS, max(0.0, deadline - time.monotonic())))
            # Never wait for the connection here: this runs on the worker's event loop, often
            # while the SQLite thread is inside a transaction; a busy connection means "look
            # again at the next poll", not "block the loop until its fsync is done".
            if not self._lock.acquire(blocking=False):
                continue
            try:
                changed = self._version(work_only=True) != start
            finally:
                self._lock.release()
            if changed:
                break
        return []

    async def withdraw(self, queues: Sequence[str], waiter: base.Waiter
                       ) -> list[base.ClaimedTask]:
        """Nothing to withdraw: no task is handed over here."""
        return []

    async def wait_for_urgent(self, queues: Sequence[str], timeout: float) -> int | None:
        """No urgent announcements here (``signals_priority`` is false): the worker claims
        urgent work on its own. Sleeps ``timeout``."""
        await asyncio.sleep(max(0.0, timeout))
        return None

    def declare_queue(self, queue: str, partitions: int = 1) -> None:
        """Partitions spread a queue over Redis Cluster shards: one database has nothing to
        spread over, so they are accepted and ignored."""

    def wait_for_change(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        start = self._version(work_only=False)
        while time.monotonic() < deadline:
            time.sleep(min(POLL_INTERVAL_SECONDS, max(0.0, deadline - time.monotonic())))
            if self._version(work_only=False) != start:
                return

    async def warm_up(self, connections: int) -> None:
        """Nothing to open: async calls run the sync connection in a thread."""

    async def upkeep(self) -> None:
        """Nothing to do: SQLite reuses the pages that deleted rows free."""

    async def release_loop(self) -> None:
        """Nothing to release: async calls run the sync connection in a thread."""

    def close(self) -> None:
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
            self._connection = None
            if self._executor is not None and self._pid == os.getpid():
                self._executor.shutdown(wait=False)
            self._executor = None

    # -- connection ------------------------------------------------------------------------------

    def _version(self, work_only: bool) -> tuple[int, int]:
        """Changes when another process commits, or this one commits (work: new work only)."""
        with self._lock:
            row = self._connect().execute("PRAGMA data_version").fetchone()
            local = self._local_writes if work_only else self._local_commits
            return (int(row[0]), local)

    def _thread(self) -> ThreadPoolExecutor:
        executor = self._executor
        if executor is not None and self._pid == os.getpid():
            return executor  # the hot path takes no lock: the loop must not wait on SQL
        with self._lock:
            self._connect()
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="conveyor-sqlite")
            return self._executor

    def _connect(self) -> sqlite3.Connection:
        """The connection of this process; a forked child opens its own."""
        pid = os.getpid()
        if self._connection is not None and self._pid == pid:
            return self._connection
        self._connection = None
        self._executor = None  # threads do not survive fork
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"cannot open SQLite database {self.path!r}: {exc}") from exc
        if self.path != ":memory:":
            self._enable_wal(conn)
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        self._migrate(conn)
        self._connection = conn
        self._pid = pid
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switching to WAL needs a moment of exclusive access, which SQLite does not queue for
        with busy_timeout: several processes opening a new file at once retry here instead."""
        deadline = time.monotonic() + self._busy_timeout
        delay = 0.005
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        with self._transaction(conn):
            conn.execute(
                "CREATE TABLE IF NOT EXISTS conveyor_migrations "
                "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM conveyor_migrations")}
            for version, script in MIGRATIONS:
                if version in done:
                    continue
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO conveyor_migrations (version, applied_at) VALUES (?, ?)",
                    (version, self.clock()),
                )

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[None]:
        self._begin(conn)
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _begin(self, conn: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``, retried every millisecond or so while another writer holds the
        lock (see ``LOCK_WAIT_MS``); statements inside the transaction keep the full busy
        timeout."""
        deadline = time.monotonic() + self._busy_timeout
        conn.execute(f"PRAGMA busy_timeout = {LOCK_WAIT_MS}")
        try:
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if not _busy(exc) or time.monotonic() > deadline:
                        raise
                time.sleep(LOCK_RETRY_SECONDS)
        finally:
            conn.execute(f"PRAGMA busy_timeout = {round(self._busy_timeout * 1000)}")

    # -- transitions -----------------------------------------------------------------------------

    def _enqueue(
        self, conn: sqlite3.Connection, op: base.Enqueue, now: float
    ) -> list[base.EnqueueOutcome]:
        outcomes = []
        created: dict[str, int] = {}
        insert, existing = QUERIES["enqueue"], QUERIES["enqueue_existing"]
        for task in op.tasks:
            due = task.eta if task.eta is not None else now + task.delay_seconds
            cursor = conn.execute(
                insert,
                {
                    "id": task.id, "name": task.name, "queue": task.queue,
                    "payload": task.payload, "priority": task.priority,
                    "max_retries": task.max_retries, "now": now, "due": due,
                    "idempotency_key": task.idempotency_key,
                    "timeout_seconds": task.timeout_seconds,
                    "result_ttl_seconds": task.result_ttl_seconds,
                },
            )
            if cursor.rowcount == 1:
                outcomes.append(base.EnqueueOutcome(task.id, created=True))
                created[task.queue] = created.get(task.queue, 0) + 1
            else:
                row = conn.execute(existing, {"idempotency_key": task.idempotency_key}).fetchone()
                outcomes.append(base.EnqueueOutcome(row[0], created=False))
        for queue, count in created.items():
            conn.execute(QUERIES["record_metrics_now"], {"name": "enqueued", "queue": queue,
                                                   "minute": int(now // 60), "count": count})
        return outcomes

    def _claim(
        self, conn: sqlite3.Connection, op: base.Claim, now: float
    ) -> list[base.ClaimedTask]:
        for queue in op.queues:
            conn.execute(QUERIES["claim_promote_due"], {"queue": queue, "now": now})
        claimed: list[base.ClaimedTask] = []

        def take(query: str, wanted: int) -> None:
            goal = len(claimed) + wanted
            for queue in op.queues:
                if len(claimed) >= goal:
                    return
                rows = conn.execute(
                    QUERIES[query],
                    {"queue": queue, "now": now, "limit": goal - len(claimed),
                     "worker_id": op.worker_id, "lease_seconds": op.lease_seconds,
                     "min_priority": op.min_priority},
                ).fetchall()
                for row in rows:
                    try:
                        claimed.append(_claimed_task(row))
                    except (TypeError, ValueError) as exc:
                        conn.execute(QUERIES["claim_bury"], {"id": row[0], "now": now, "error": (
                            f"DecodeError: the stored task row could not be read ({exc})")})

        take("claim_oldest", min(op.oldest_first, op.limit))
        take("claim", op.limit - len(claimed))
        claimed.sort(key=lambda t: -t.priority)
        return claimed

    def _per_row(
        self,
        name: str,
        rows_of: Callable[[Any], Sequence[Any]],
        params: Callable[[Any], dict[str, Any]],
    ) -> Callable[[sqlite3.Connection, Any, float], list[str]]:
        """A lease-guarded transition applied row by row; returns the ids whose lease was lost."""
        query = QUERIES[name]

        def run(conn: sqlite3.Connection, op: Any, now: float) -> list[str]:
            return [
                row.id for row in rows_of(op)
                if conn.execute(query, {**params(row), "now": now}).rowcount != 1
            ]

        return run

    def _extend(self, conn: sqlite3.Connection, op: base.Extend, now: float) -> list[str]:
        lost = []
        for lease in op.leases:
            params = {"id": lease.id, "lease_token": lease.lease_token, "now": now,
                      "lease_seconds": op.lease_seconds}
            if conn.execute(QUERIES["extend"], params).rowcount != 1:
                lost.append(lease.id)
        return lost

    def _by_ids(
        self, name: str
    ) -> Callable[[sqlite3.Connection, Any, float], list[str]]:
        query = QUERIES[name]

        def run(conn: sqlite3.Connection, op: Any, now: float) -> list[str]:
            return [
                task_id for task_id in op.ids
                if conn.execute(query, {"id": task_id, "now": now}).rowcount == 1
            ]

        return run

    def _cancel(self, conn: sqlite3.Connection, op: base.Cancel, now: float) -> list[str]:
        done: list[str] = []
        per_queue: dict[str, int] = {}
        for task_id in op.ids:
            row = conn.execute(QUERIES["cancel"], {"id": task_id, "now": now}).fetchone()
            if row is not None:
                done.append(task_id)
                per_queue[row[0]] = per_queue.get(row[0], 0) + 1
        for queue, count in per_queue.items():
            conn.execute(QUERIES["record_metrics_now"], {"name": "cancelled", "queue": queue,
                                                   "minute": int(now // 60), "count": count})
        return done

    def _recover_expired(
        self, conn: sqlite3.Connection, op: base.RecoverExpired, now: float
    ) -> base.Recovered:
        rows = conn.execute(
            QUERIES["recover_expired"],
            {"now": now, "max_worker_lost": op.max_worker_lost, "limit": op.limit},
        ).fetchall()
        return base.recovered(rows)

    def _purge(self, conn: sqlite3.Connection, op: base.Purge, now: float) -> int:
        return conn.execute(QUERIES["purge"], {"queue": op.queue, "state": op.state}).rowcount

    def _prune(self, conn: sqlite3.Connection, op: base.Prune, now: float) -> int:
        conn.execute(
            QUERIES["prune_workers"], {"now": now, "silence": op.worker_silence_seconds}
        )
        conn.execute(QUERIES["prune_metrics"],
                     {"before_minute": int((now - op.metrics_retention_seconds) // 60)})
        return conn.execute(QUERIES["prune"], {"now": now, "limit": 10_000}).rowcount

    def _record_metrics(
        self, conn: sqlite3.Connection, op: base.RecordMetrics, now: float
    ) -> None:
        conn.executemany(QUERIES["record_metrics"], [
            {"queue": c.queue, "minute": minute, "name": c.name, "value": c.value}
            for c in op.counts for minute in (c.minute, 0)
        ])

    def _metrics_read(
        self, conn: sqlite3.Connection, op: base.MetricsRead, now: float
    ) -> list[base.MetricCount]:
        rows = conn.execute(QUERIES["metrics_read"], {"since_minute": op.since_minute,
                                                      "until_minute": op.until_minute})
        return [base.MetricCount(q, int(m), n, float(v)) for q, m, n, v in rows]

    def _pause_queue(self, conn: sqlite3.Connection, op: base.PauseQueue, now: float) -> None:
        conn.execute(QUERIES["pause_queue"],
                     {"queue": op.queue, "paused": int(op.paused), "now": now})

    def _register_worker(
        self, conn: sqlite3.Connection, op: base.RegisterWorker, now: float
    ) -> None:
        w = op.worker
        conn.execute(
            QUERIES["register_worker"],
            {"id": w.id, "host": w.host, "pid": w.pid, "queues": json.dumps(list(w.queues)),
             "concurrency": w.concurrency, "busy": w.busy, "started_at": w.started_at,
             "now": now},
        )

    def _unregister_worker(
        self, conn: sqlite3.Connection, op: base.UnregisterWorker, now: float
    ) -> None:
        conn.execute(QUERIES["unregister_worker"], {"id": op.worker_id})

    # -- leadership and schedules ----------------------------------------------------------------

    def _acquire_lock(self, conn: sqlite3.Connection, op: base.AcquireLock, now: float) -> bool:
        params = {"name": op.name, "holder": op.holder, "ttl": op.ttl_seconds, "now": now}
        row = conn.execute(QUERIES["acquire_lock"], params).fetchone()
        return row is not None and row[0] == op.holder

    def _release_lock(self, conn: sqlite3.Connection, op: base.ReleaseLock, now: float) -> None:
        conn.execute(QUERIES["release_lock"], {"name": op.name, "holder": op.holder})

    def _record_schedule_run(
        self, conn: sqlite3.Connection, op: base.RecordScheduleRun, now: float
    ) -> None:
        run = op.run
        conn.execute(
            QUERIES["record_schedule_run"],
            {"name": run.name, "last_due_at": run.last_due_at, "last_task_id": run.last_task_id,
             "now": now},
        )

    def _get_schedule_runs(
        self, conn: sqlite3.Connection, op: base.GetScheduleRuns, now: float
    ) -> list[base.ScheduleRun]:
        runs = []
        for name in op.names:
            row = conn.execute(QUERIES["get_schedule_runs"], {"name": name}).fetchone()
            if row is not None:
                runs.append(base.ScheduleRun(row[0], float(row[1]), row[2]))
        return runs

    # -- reads -----------------------------------------------------------------------------------

    def _get_tasks(
        self, conn: sqlite3.Connection, op: base.GetTasks, now: float
    ) -> list[base.TaskRow]:
        found = []
        for task_id in op.ids:
            row = conn.execute(QUERIES["get_tasks"], {"id": task_id}).fetchone()
            if row is not None:
                found.append(base.TaskRow(*row))
        return found

    def _list_tasks(
        self, conn: sqlite3.Connection, op: base.ListTasks, now: float
    ) -> list[base.TaskRow]:
        rows = conn.execute(
            QUERIES["list_tasks"],
            {"queue": op.queue, "state": op.state, "limit": op.limit, "offset": op.offset},
        ).fetchall()
        return [base.TaskRow(*row) for row in rows]

    def _queue_stats(
        self, conn: sqlite3.Connection, op: base.QueueStatsRead, now: float
    ) -> list[base.QueueCounts]:
        rows = conn.execute(QUERIES["queue_stats_read"]).fetchall()
        paused = [q for (q,) in conn.execute(QUERIES["queue_stats_read_paused"])]
        return base.queue_counts(rows, paused)

    def _list_workers(
        self, conn: sqlite3.Connection, op: base.ListWorkers, now: float
    ) -> list[base.WorkerRow]:
        return [
            base.WorkerRow(wid, host, pid, tuple(json.loads(queues)), conc, busy, started, seen)
            for wid, host, pid, queues, conc, busy, started, seen in conn.execute(
                QUERIES["list_workers"]
            )
        ]

    def _next_due_at(
        self, conn: sqlite3.Connection, op: base.NextDueAt, now: float
    ) -> float | None:
        dues = [
            conn.execute(QUERIES["next_due_at"], {"queue": queue}).fetchone()[0]
            for queue in op.queues
        ]
        known = [d for d in dues if d is not None]
        return min(known) if known else None


def _claimed_task(row: Sequence[Any]) -> base.ClaimedTask:
    """RETURNING skips REAL affinity: SQLite stores whole-number REALs as integers, so times and
    durations would come back as ``int`` (``1700000030`` for ``1700000030.0``). A column of the
    wrong type (SQLite stores whatever it is given) raises ``TypeError`` or ``ValueError``."""
    (task_id, name, queue, payload, priority, attempts, max_retries, worker_lost, token,
     lease_expires_at, created_at, scheduled_at, key, timeout, result_ttl) = row
    if not (isinstance(name, str) and isinstance(payload, bytes)
            and all(type(n) is int for n in (priority, attempts, max_retries, worker_lost))):
        raise TypeError("a column holds a value of the wrong type")
    return base.ClaimedTask(
        task_id, name, queue, payload, priority, attempts, max_retries, worker_lost, token,
        float(lease_expires_at), float(created_at), float(scheduled_at), key,
        None if timeout is None else float(timeout), float(result_ttl),
    )


def _completion_params(c: base.Completion) -> dict[str, Any]:
    return {"id": c.id, "lease_token": c.lease_token, "result": c.result,
            "started_at": c.started_at}


def _failure_params(f: base.Failure) -> dict[str, Any]:
    return {"id": f.id, "lease_token": f.lease_token, "error": f.error,
            "retry_in": f.retry_in_seconds, "dead_reason": f.dead_reason,
            "worker_lost": int(f.worker_lost), "started_at": f.started_at,
            "errors_kept": base.ATTEMPT_ERRORS_KEPT,
            "error_chars": base.ATTEMPT_ERROR_CHARS}


def _lease_params(lease: base.Lease) -> dict[str, Any]:
    return {"id": lease.id, "lease_token": lease.lease_token}


def _statements(script: str) -> list[str]:
    """Split a migration script on ';' at line ends (our migrations hold no triggers)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Another connection holds the lock (SQLITE_BUSY), as opposed to any other failure."""
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY or \
        "locked" in str(exc)
