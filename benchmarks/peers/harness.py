"""The BENCHMARKS.md workloads, written once for every peer.

This module runs inside each peer's own virtualenv (through ``agent.py``), so it uses the standard
library only. A peer plugs in through a small adapter module (see ``adapters/__init__.py``): a
``Producer`` that enqueues, and the command lines that start its workers. Everything that is
measured is measured here, the same way for every peer:

- handlers append one fixed-size record (task number, reference time, start time) to a file
  opened with ``O_APPEND``, and the harness polls the file's size, so recording a completion
  costs no broker round trip and is identical for every system;
- the reference time is the enqueue time (T, C, L, P) or the due time (D);
- producer and workers are separate processes; every worker runs in its own session so that a
  hung peer, and any children it forked, can be killed as a group.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import inspect
import os
import random
import signal
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RECORD = struct.Struct("<Idd")
"""(task number, reference time, start time): the same record conveyor.bench writes."""

WARMUP_BASE = 1_000_000_000
"""Task numbers from here on are warm-up tasks, never counted by a workload."""

LATENCY_COUNT = 1_000
LATENCY_INTERVAL = 0.005
PRIORITY_LOW = 10_000
PRIORITY_HIGH = 20
PRIORITY_DELAY = float(os.environ.get("PEERBENCH_PRIORITY_DELAY", "0"))
"""Seconds between the first low task's start and the high ones (P). 0 is BENCHMARKS.md's
workload ("at once"); a few hundred ms measures the wait in the steady drain instead of in the
workers' start-up."""
DELAYED_COUNT = 200
DELAYED_AHEAD = (1.0, 3.0)
POLL = 0.002

Item = tuple[int, float]


class WorkloadTimeout(Exception):
    """The workload's deadline passed: the peer is reported as "timeout", never waited on."""


class WorkersDied(Exception):
    """Every worker process exited while tasks were still outstanding."""


# -- what an adapter provides -------------------------------------------------------------------


@dataclass
class Command:
    """One worker process to start: its argv and extra environment variables."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


class Producer:
    """Enqueues tasks for one peer. Methods may be plain or ``async``; the harness handles both.

    ``priority`` is ``None`` (the default), ``"low"`` or ``"high"``. ``bulk`` says whether
    ``enqueue_many`` uses the peer's own bulk API (otherwise it loops over ``enqueue``).
    ``priorities`` is False where the peer has none on this backend: P is then reported as
    "no priorities" rather than measured.
    """

    bulk = False
    priorities = True

    def open(self) -> Any:
        """Connect; called once before the first enqueue."""

    def enqueue(self, number: int, ref: float, priority: str | None = None) -> Any:
        raise NotImplementedError

    def enqueue_many(self, items: Sequence[Item], priority: str | None = None) -> Any:
        for number, ref in items:
            self.enqueue(number, ref, priority)

    def enqueue_at(self, number: int, due: float) -> Any:
        """Schedule a task to start at epoch time ``due`` (passed to the handler as ``ref``)."""
        raise NotImplementedError

    def close(self) -> Any:
        """Disconnect; called once at the end."""


class AsyncProducer(Producer):
    """Base for asyncio peers: the same methods, as coroutines."""

    async def enqueue_many(self, items: Sequence[Item], priority: str | None = None) -> Any:
        for number, ref in items:
            await self.enqueue(number, ref, priority)


class Driver:
    """Calls a Producer's methods synchronously, whether they are coroutines or not.

    One ``asyncio.Runner`` lives for the whole workload, so async clients keep their
    connections and every call shares one context (some clients set context variables when
    they connect and check them when they close).
    """

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.runner = asyncio.Runner()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.producer, name)

        def call(*args: Any) -> Any:
            result = method(*args)
            if inspect.iscoroutine(result):
                result = self.runner.run(result)
            return result

        return call

    def shutdown(self) -> None:
        try:
            self.close()
        finally:
            self.runner.close()


def bin_path(script: str) -> str:
    """A console script of the running virtualenv (the peer's CLI)."""
    return str(Path(sys.executable).parent / script)


# -- worker processes ---------------------------------------------------------------------------


class Workers:
    """The worker processes of one run: started in their own sessions, always stopped as groups.

    Their pids are written to ``pids_file`` so that the outer runner can kill them even if this
    process is itself killed on a hard timeout.
    """

    def __init__(self, commands: list[Command], env: dict[str, str], cwd: Path,
                 log: Path, pids_file: Path) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.log_file = log.open("ab")
        for command in commands:
            process = subprocess.Popen(
                command.argv, env={**env, **command.env}, cwd=cwd, stdin=subprocess.DEVNULL,
                stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True)
            self.processes.append(process)
            with pids_file.open("a") as out:
                out.write(f"{process.pid}\n")

    def all_exited(self) -> bool:
        return all(p.poll() is not None for p in self.processes)

    def stop(self, grace: float = 10.0) -> None:
        """Warm stop (SIGTERM, then SIGINT for peers that wait for it), then SIGKILL."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            for process in self.processes:
                _signal_group(process.pid, sig)
            deadline = time.monotonic() + grace / 2
            while time.monotonic() < deadline and not self.all_exited():
                time.sleep(0.05)
        for process in self.processes:
            _signal_group(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
        self.log_file.close()


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


# -- records ------------------------------------------------------------------------------------


def read_records(path: Path) -> list[tuple[int, float, float]]:
    if not path.exists():
        return []
    data = path.read_bytes()
    usable = len(data) - len(data) % RECORD.size
    return [RECORD.unpack_from(data, offset) for offset in range(0, usable, RECORD.size)]


def counted(path: Path) -> list[tuple[int, float, float]]:
    """The records of the workload itself, warm-up tasks left out."""
    return [r for r in read_records(path) if r[0] < WARMUP_BASE]


def record_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def check_exactly_once(records: Iterable[tuple[int, float, float]], expected: int
                       ) -> dict[str, int]:
    """Each of ``expected`` task numbers once: counts what went missing or ran twice."""
    numbers = [number for number, _, _ in records]
    distinct = set(numbers)
    return {
        "expected": expected,
        "records": len(numbers),
        "distinct": len(distinct),
        "duplicates": len(numbers) - len(distinct),
        "missing": len(set(range(expected)) - distinct),
        "unexpected": len(distinct - set(range(expected))),
    }


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


def spread(values_ms: Iterable[float], points: Sequence[int] = (50, 95, 99)) -> dict[str, float]:
    ordered = sorted(values_ms)
    if not ordered:
        return {}
    out = {f"p{p}": percentile(ordered, p) for p in points}
    out["max"] = ordered[-1]
    out["min"] = ordered[0]
    return out


# -- one workload run ---------------------------------------------------------------------------


@dataclass
class Context:
    """Everything one workload run needs; built by ``agent.py``."""

    name: str
    adapter: Any
    url: str
    workdir: Path
    n: int
    deadline: float
    log: Callable[[str], None]

    @property
    def record(self) -> Path:
        return self.workdir / "record.bin"

    def worker_env(self) -> dict[str, str]:
        here = str(Path(__file__).resolve().parent)
        path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
        return {**os.environ, "PYTHONPATH": path, "PEERBENCH_URL": self.url,
                "PEERBENCH_RECORD": str(self.record), "PYTHONUNBUFFERED": "1"}

    def start_workers(self, workload: str) -> Workers:
        commands = self.adapter.worker_commands(self.url, self.record, workload)
        return Workers(commands, self.worker_env(), self.workdir, self.workdir / "workers.log",
                       self.workdir / "workers.pids")

    def wait_for(self, size: int, workers: Workers | None, what: str) -> float:
        """Poll until the record file holds ``size`` bytes; returns the perf_counter then."""
        while True:
            if record_size(self.record) >= size:
                return time.perf_counter()
            if time.monotonic() > self.deadline:
                raise WorkloadTimeout(f"timed out waiting for {what}")
            if workers is not None and workers.all_exited():
                raise WorkersDied(f"every worker exited while waiting for {what}")
            time.sleep(POLL)

    def warm_up(self, driver: Driver, workers: Workers, count: int = 4, settle: float = 1.0
                ) -> int:
        """Run a few tasks so every worker is imported, connected and idle before measuring.

        Returns the record file's size afterwards: the workload's records start there.
        """
        for k in range(count):
            driver.enqueue(WARMUP_BASE + k, time.time(), None)
        self.wait_for(count * RECORD.size, workers, "warm-up tasks")
        time.sleep(settle)
        return record_size(self.record)

    def settle_and_check(self, expected: int) -> dict[str, int]:
        """Give late duplicates a moment to show up, then count every task once."""
        time.sleep(0.5)
        return check_exactly_once(counted(self.record), expected)


def batches(items: Sequence[Item], size: int) -> Iterable[Sequence[Item]]:
    for first in range(0, len(items), size):
        yield items[first:first + size]


def throughput(ctx: Context, driver: Driver) -> dict[str, Any]:
    """T: enqueue N (bulk where the peer has it), then start the workers and time the drain."""
    started = time.perf_counter()
    for batch in batches([(i, 0.0) for i in range(ctx.n)], 1000):
        now = time.time()
        driver.enqueue_many([(i, now) for i, _ in batch], None)
    enqueue_rate = ctx.n / (time.perf_counter() - started)
    ctx.log(f"enqueued {ctx.n:,} at {enqueue_rate:,.0f}/s; draining")
    workers = ctx.start_workers("T")
    try:
        started = time.perf_counter()
        finished = ctx.wait_for(ctx.n * RECORD.size, workers, f"{ctx.n:,} tasks")
        check = ctx.settle_and_check(ctx.n)
    finally:
        workers.stop()
    first_start = min(start for _, _, start in counted(ctx.record))
    last_start = max(start for _, _, start in counted(ctx.record))
    return {"enqueue_rate": enqueue_rate, "drain_rate": ctx.n / (finished - started),
            "drain_rate_after_first_start": ctx.n / max(1e-9, last_start - first_start),
            "bulk": bool(ctx.adapter.Producer.bulk), "check": check}


def concurrent(ctx: Context, driver: Driver) -> dict[str, Any]:
    """C: workers already idle; producer enqueues N (batches of 100) while they work."""
    workers = ctx.start_workers("C")
    try:
        base = ctx.warm_up(driver, workers)
        started = time.perf_counter()
        for batch in batches([(i, 0.0) for i in range(ctx.n)], 100):
            now = time.time()
            driver.enqueue_many([(i, now) for i, _ in batch], None)
        enqueued = time.perf_counter()
        finished = ctx.wait_for(base + ctx.n * RECORD.size, workers, f"{ctx.n:,} tasks")
        check = ctx.settle_and_check(ctx.n)
    finally:
        workers.stop()
    return {"e2e_rate": ctx.n / (finished - started),
            "enqueue_rate": ctx.n / (enqueued - started), "check": check}


def latency(ctx: Context, driver: Driver) -> dict[str, Any]:
    """L: idle workers; one task every 5 ms, each carrying its enqueue time."""
    workers = ctx.start_workers("L")
    try:
        base = ctx.warm_up(driver, workers)
        next_at = time.perf_counter()
        for i in range(LATENCY_COUNT):
            driver.enqueue(i, time.time(), None)
            next_at += LATENCY_INTERVAL
            time.sleep(max(0.0, next_at - time.perf_counter()))
        ctx.wait_for(base + LATENCY_COUNT * RECORD.size, workers, f"{LATENCY_COUNT} tasks")
        check = ctx.settle_and_check(LATENCY_COUNT)
    finally:
        workers.stop()
    waits = [(start - ref) * 1000 for _, ref, start in counted(ctx.record)]
    return {"latency_ms": spread(waits), "check": check}


def priority(ctx: Context, driver: Driver) -> dict[str, Any]:
    """P: 10,000 low-priority tasks waiting; start workers, then at once 20 high-priority ones.

    The high ones are enqueued as soon as the first low one has started (the workers are up):
    worker start-up time is not what this measures.
    """
    if not ctx.adapter.Producer.priorities:
        return {"skipped": "no priorities"}
    for batch in batches([(i, 0.0) for i in range(PRIORITY_LOW)], 1000):
        now = time.time()
        driver.enqueue_many([(i, now) for i, _ in batch], "low")
    total = PRIORITY_LOW + PRIORITY_HIGH
    workers = ctx.start_workers("P")
    try:
        ctx.wait_for(RECORD.size, workers, "the first low-priority task")
        time.sleep(PRIORITY_DELAY)
        for i in range(PRIORITY_LOW, total):
            driver.enqueue(i, time.time(), "high")
        ctx.wait_for(total * RECORD.size, workers, f"{total:,} tasks")
        check = ctx.settle_and_check(total)
    finally:
        workers.stop()
    records = counted(ctx.record)
    highs = [(start, ref) for number, ref, start in records if number >= PRIORITY_LOW]
    low_starts = [start for number, _, start in records if number < PRIORITY_LOW]
    first_high = min(start for start, _ in highs)
    last_high = max(start for start, _ in highs)
    return {"high_wait_ms": spread([(start - ref) * 1000 for start, ref in highs], (50,)),
            "lows_before_first": sum(1 for s in low_starts if s < first_high),
            "lows_before_last": sum(1 for s in low_starts if s < last_high),
            "lows_overtaking": overtaking(highs, low_starts),
            "check": check}


def overtaking(highs: Sequence[tuple[float, float]], low_starts: Sequence[float]) -> int:
    """The most low-priority tasks that started after one high-priority task was enqueued and
    before it started (``highs``: (start, enqueue time) pairs). "Lows before the last" also
    counts the lows that ran while the producer was still enqueueing the high ones (about 100
    for a system draining 30,000/s over the 3-4 ms it takes to send 20): this is the figure
    the priority target's "no more lower-priority tasks started before it than the worker's
    concurrency" asks about."""
    starts = sorted(low_starts)
    return max((bisect.bisect_left(starts, start) - bisect.bisect_right(starts, ref)
                for start, ref in highs), default=0)


def delayed(ctx: Context, driver: Driver) -> dict[str, Any]:
    """D: 200 tasks due 1-3 s ahead; lateness = start - due (negative: started early)."""
    workers = ctx.start_workers("D")
    try:
        base = ctx.warm_up(driver, workers)
        rng = random.Random(20261122)
        now = time.time()
        dues = [now + rng.uniform(*DELAYED_AHEAD) for _ in range(DELAYED_COUNT)]
        for i, due in enumerate(dues):
            driver.enqueue_at(i, due)
        ctx.wait_for(base + DELAYED_COUNT * RECORD.size, workers, f"{DELAYED_COUNT} tasks")
        check = ctx.settle_and_check(DELAYED_COUNT)
    finally:
        workers.stop()
    lateness = [(start - ref) * 1000 for _, ref, start in counted(ctx.record)]
    return {"lateness_ms": spread(lateness), "early": sum(1 for x in lateness if x < 0),
            "check": check}


WORKLOADS: dict[str, Callable[[Context, Driver], dict[str, Any]]] = {
    "T": throughput, "C": concurrent, "L": latency, "P": priority, "D": delayed,
}


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
