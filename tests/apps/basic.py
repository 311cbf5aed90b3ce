"""A small app for tests that run real worker processes. The URL comes from CONVEYOR_URL."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from conveyor import Conveyor, Retry, current_task

app = Conveyor(os.environ.get("CONVEYOR_URL", "sqlite:///test-basic.db"),
               lease=float(os.environ.get("CONVEYOR_LEASE", "30")))


def _record(kind: str, value: str) -> None:
    """Append a line to $CONVEYOR_RECORD so tests can see side effects across processes."""
    path = os.environ.get("CONVEYOR_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{kind} {value} {os.getpid()}\n")


@app.task(queue="default")
def add(a: int, b: int) -> int:
    return a + b


@app.task(queue="default")
def record(tag: str) -> str:
    _record("ran", tag)
    return tag


@app.task(queue="default", max_retries=5, retry=Retry.fixed(0.05))
def slow(tag: str, seconds: float) -> str:
    _record("start", tag)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
    _record("done", tag)
    return tag


@app.task(queue="default")
async def async_echo(value: str) -> str:
    await asyncio.sleep(0)
    return value


@app.task(queue="default", max_retries=0)
def fail_always(message: str) -> None:
    raise RuntimeError(message)


@app.task(queue="default", executor="process", timeout=1.0, max_retries=0)
def sleep_in_process(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


@app.task(queue="default")
def whoami() -> dict[str, object]:
    ctx = current_task()
    return {"id": ctx.id, "attempt": ctx.attempt, "pid": os.getpid()}


def touch(path: str) -> None:
    Path(path).touch()


@app.task(queue="default", executor="process", max_retries=10, retry=Retry.fixed(0.01))
def kill_own_process() -> None:
    os._exit(13)


def _hold_the_gil(seconds: float) -> float:
    """Holds the GIL in C (a backtracking regex) in ever longer stretches, for ``seconds``."""
    import re

    start, size = time.monotonic(), 18
    while time.monotonic() - start < seconds:
        re.match(r"(a+)+$", "a" * size + "b")  # one C call: no thread switch inside it
        size += 1
    return time.monotonic() - start


@app.task(queue="default")
def hold_the_gil(seconds: float) -> float:
    return _hold_the_gil(seconds)


@app.task(queue="default", executor="process")
def hold_the_gil_in_process(seconds: float) -> float:
    return _hold_the_gil(seconds)
