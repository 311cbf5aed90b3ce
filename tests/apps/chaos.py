"""The app the reliability suite (tests/chaos/) runs in real worker processes.

Its tasks leave their side effects where the test can count them across processes:
``$CONVEYOR_EFFECTS`` is an append-only log, one short line per effect (appends of one line
under ``PIPE_BUF`` are atomic between processes), and ``$CONVEYOR_LEDGER`` a SQLite file whose
primary key on the effect's key makes an effect happen once however often its task runs (the
"idempotency ledger" a careful user keeps beside an at-least-once queue).
"""

from __future__ import annotations

import os
import sqlite3
import time
import zlib

from conveyor import Conveyor, Retry, current_task

app = Conveyor(
    os.environ.get("CONVEYOR_URL", "sqlite:///chaos-unset.db"),
    lease=float(os.environ.get("CONVEYOR_LEASE", "5")),
    max_worker_lost=int(os.environ.get("CONVEYOR_MAX_WORKER_LOST", "1000")),
)


def _append(line: str) -> None:
    path = os.environ.get("CONVEYOR_EFFECTS")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)


def _ledger_insert(key: str, task_id: str) -> bool:
    """True if this call recorded the effect; False if an earlier run already had."""
    connection = sqlite3.connect(os.environ["CONVEYOR_LEDGER"], timeout=60.0)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(
            "CREATE TABLE IF NOT EXISTS ledger (key TEXT PRIMARY KEY, task_id TEXT, pid INT)")
        with connection:
            cursor = connection.execute(
                "INSERT OR IGNORE INTO ledger (key, task_id, pid) VALUES (?, ?, ?)",
                (key, task_id, os.getpid()))
        return cursor.rowcount == 1
    finally:
        connection.close()


def _busy(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))


@app.task(queue="chaos", max_retries=1000, retry=Retry.fixed(0.05))
def effect(tag: str, seconds: float = 0.0) -> str:
    """Works for ``seconds``, then appends ``effect <task id> <tag> <pid>``: an at-least-once
    side effect, so a task killed after it and before its acknowledgement shows up twice."""
    ctx = current_task()
    _append(f"start {ctx.id} {tag} {os.getpid()} {time.time():.6f}")
    _busy(seconds)
    _append(f"effect {ctx.id} {tag} {os.getpid()} {time.time():.6f}")
    return tag


@app.task(queue="chaos", max_retries=1000, retry=Retry.fixed(0.05))
def fenced_effect(tag: str, seconds: float = 0.0) -> str:
    """Works for ``seconds``, then records its effect through the ledger keyed by its task id:
    a second run of the same task (a zombie worker waking up) changes nothing."""
    ctx = current_task()
    _append(f"start {ctx.id} {tag} {os.getpid()} {time.time():.6f}")
    _busy(seconds)
    if _ledger_insert(ctx.id, ctx.id):
        _append(f"effect {ctx.id} {tag} {os.getpid()} {time.time():.6f}")
    return tag


def crashes_first_time(key: str, percent: int) -> bool:
    """Whether ``key``'s first attempt crashes (a stable choice of ``percent`` of the keys)."""
    return zlib.crc32(key.encode()) % 100 < percent


@app.task(queue="chaos", executor="process", max_retries=1000, retry=Retry.fixed(0.05))
def keyed_effect(key: str, crash_percent: int = 0) -> str:
    """Records the effect of ``key`` through the ledger, then, on the first attempt of a chosen
    share of the keys, kills its own process: after the side effect, before the ack."""
    ctx = current_task()
    _append(f"run {ctx.id} {key} {os.getpid()} {ctx.attempt}")
    if _ledger_insert(key, ctx.id):
        _append(f"effect {key} {ctx.id} {os.getpid()}")
    if ctx.attempt == 1 and crashes_first_time(key, crash_percent):
        os._exit(17)
    return key


@app.task(queue="chaos", transactional=True, max_retries=1000, retry=Retry.fixed(0.05))
def transactional_effect(key: str, crash_percent: int = 0) -> str:
    """PostgreSQL: the effect is a row written in the transaction that marks the task DONE, so
    a crash after it and before the commit (here: the whole worker process ends) takes it back.
    The test creates ``chaos_effects`` (no unique key: a second commit would show)."""
    ctx = current_task()
    _append(f"run {ctx.id} {key} {os.getpid()} {ctx.attempt}")
    ctx.connection.execute("INSERT INTO chaos_effects (key, task_id, pid) VALUES (%s, %s, %s)",
                           (key, ctx.id, os.getpid()))
    if ctx.attempt == 1 and crashes_first_time(key, crash_percent):
        os._exit(17)
    return key


@app.task(queue="chaos", max_retries=0)
def kill_my_worker() -> None:
    """Ends the whole worker process from inside a thread-lane task: every attempt loses its
    worker, which must be counted as ``worker_lost``, never as the task raising."""
    _append(f"run {current_task().id} kill {os.getpid()}")
    os._exit(23)


def _hold_the_gil(seconds: float) -> float:
    """Holds the GIL in single C calls (a backtracking regex) for ``seconds``."""
    import re

    start, size = time.monotonic(), 18
    while time.monotonic() - start < seconds:
        re.match(r"(a+)+$", "a" * size + "b")
        size += 1
    return time.monotonic() - start


@app.task(queue="chaos", executor="process", max_retries=0)
def kill_my_pool_process() -> None:
    """Ends the pool process it runs in: the worker sees the death and reports it."""
    _append(f"run {current_task().id} kill {os.getpid()}")
    os._exit(23)


@app.task(queue="chaos", max_retries=0)
def hold_the_gil(seconds: float) -> float:
    return _hold_the_gil(seconds)


@app.task(queue="chaos", executor="process", max_retries=0)
def hold_the_gil_in_process(seconds: float) -> float:
    return _hold_the_gil(seconds)


@app.task(queue="chaos", max_retries=0)
def due_at(due_epoch: float) -> float:
    """Records when it started against when it was due (lateness; < 0 would be an early start)."""
    started = time.time()
    _append(f"effect {current_task().id} {due_epoch:.6f} {os.getpid()} {started:.6f}")
    return started - due_epoch


@app.task(queue="chaos", max_retries=0)
def unserializable_result() -> object:
    return object()


class Unpicklable(Exception):
    """An exception that carries a thing no codec can write."""

    def __init__(self) -> None:
        super().__init__("cannot be serialized")
        self.handle = open(os.devnull)  # noqa: SIM115 - the point is an unserializable attribute


@app.task(queue="chaos", max_retries=0)
def raise_unserializable() -> None:
    raise Unpicklable()


@app.task(queue="chaos", max_retries=0)
def raise_huge(size: int) -> None:
    raise RuntimeError("x" * size)
