"""``conveyor bench``: the BENCHMARKS.md workloads for Conveyor on any backend (default: a fresh
SQLite file per run; ``--url redis://...`` or ``postgresql://...`` for the servers, where each run
uses a queue of its own so runs never see each other's tasks).

Handlers record completion without a broker round trip: each appends a fixed-size record
(task number, enqueue time, start time) to a file opened with ``O_APPEND``; the harness polls
the file's size. Producer and workers are separate processes.

Absolute rates drift on shared machines, so every run also measures a baseline in the same run
on the same store: a bare loop with no status tracking, retries or leases (SQLite and
PostgreSQL: batched INSERT, then batched claim-and-delete; Redis: the bare batched Lua loop that
BENCHMARKS.md describes, claiming 200 per script call and acknowledging them in one more call).
Figures are reported beside it as a ratio.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conveyor.app import Conveyor

RECORD = struct.Struct("<Idd")
QUEUE = "bench"

app = Conveyor(os.environ.get("CONVEYOR_URL"))
_record_fd: int | None = None


def _append(number: int, enqueued_at: float) -> None:
    global _record_fd
    if _record_fd is None:
        _record_fd = os.open(os.environ["CONVEYOR_BENCH_RECORD"],
                             os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_record_fd, RECORD.pack(number, enqueued_at, time.time()))


@app.task(queue=QUEUE, name="bench.noop")
def noop(number: int, enqueued_at: float) -> None:
    _append(number, enqueued_at)


@app.task(queue=QUEUE, name="bench.anoop")
async def anoop(number: int, enqueued_at: float) -> None:
    _append(number, enqueued_at)


class Harness:
    def __init__(self, workdir: Path, n: int, concurrency: int, kind: str,
                 log: Callable[[str], None], url: str | None = None) -> None:
        self.workdir = workdir
        self.url = url
        self.queue = QUEUE
        self.n = n
        self.concurrency = concurrency
        self.task = anoop if kind == "async" else noop
        self.log = log
        self.run_number = 0

    def fresh(self) -> tuple[str, Path]:
        """A store no earlier run touched: a new SQLite file, or a new queue on a server."""
        self.run_number += 1
        record = self.workdir / f"record-{self.run_number}.bin"
        if self.url is None:
            self.queue = QUEUE
            return f"sqlite:///{self.workdir / f'bench-{self.run_number}.db'}", record
        self.queue = f"bench-{os.getpid()}-{int(time.time())}-{self.run_number}"
        return self.url, record

    def enqueue(self, calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
                **options: Any) -> None:
        self.task.options(queue=self.queue, **options).enqueue_many(calls)

    def start_workers(self, url: str, record: Path, processes: int, burst: bool
                      ) -> list[subprocess.Popen[bytes]]:
        env = {**os.environ, "CONVEYOR_URL": url, "CONVEYOR_BENCH_RECORD": str(record)}
        command = [sys.executable, "-m", "conveyor", "worker", "conveyor.bench:app",
                   "-q", self.queue, "--concurrency", str(self.concurrency),
                   "--prefetch", str(self.concurrency)]
        if burst:
            command.append("--burst")
        return [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL) for _ in range(processes)]

    def wait_done(self, record: Path, workers: list[subprocess.Popen[bytes]],
                  timeout: float = 600.0) -> float:
        want = self.n * RECORD.size
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if record.exists() and record.stat().st_size >= want:
                return time.perf_counter()
            if all(w.poll() is not None for w in workers):
                raise RuntimeError(f"every worker exited before {self.n} tasks were done "
                                   f"(exit codes {[w.returncode for w in workers]})")
            time.sleep(0.002)
        raise TimeoutError(f"workers did not finish {self.n} tasks within {timeout}s")

    def enqueue_all(self, url: str, batch: int = 1000) -> float:
        app.use(url)
        started = time.perf_counter()
        for first in range(0, self.n, batch):
            now = time.time()
            self.enqueue([((i, now), {}) for i in range(first, min(first + batch, self.n))])
        elapsed = time.perf_counter() - started
        app.close()
        return self.n / elapsed

    def throughput(self, processes: int) -> tuple[float, float]:
        """Workload T: enqueue N (bulk), then start workers and time the drain."""
        url, record = self.fresh()
        enqueue_rate = self.enqueue_all(url)
        started = time.perf_counter()
        workers = self.start_workers(url, record, processes, burst=True)
        finished = self.wait_done(record, workers)
        for worker in workers:
            worker.wait(60)
        check_exactly_once(record, self.n)
        return enqueue_rate, self.n / (finished - started)

    def concurrent(self, processes: int) -> float:
        """Workload C: producer and workers at the same time, end to end."""
        url, record = self.fresh()
        app.use(url)
        workers = self.start_workers(url, record, processes, burst=False)
        wait_registered(processes, self.queue)
        started = time.perf_counter()
        for first in range(0, self.n, 100):
            now = time.time()
            self.enqueue([((i, now), {}) for i in range(first, min(first + 100, self.n))])
        finished = self.wait_done(record, workers)
        stop(workers)
        app.close()
        check_exactly_once(record, self.n)
        return self.n / (finished - started)

    def latency(self, count: int = 1000, interval: float = 0.005) -> dict[str, float]:
        """Workload L: idle workers; one task every 5 ms; start - enqueue per task, in ms."""
        url, record = self.fresh()
        app.use(url)
        workers = self.start_workers(url, record, 1, burst=False)
        wait_registered(1, self.queue)
        next_at = time.perf_counter()
        for i in range(count):
            self.enqueue([((i, time.time()), {})])
            next_at += interval
            time.sleep(max(0.0, next_at - time.perf_counter()))
        saved_n, self.n = self.n, count
        try:
            self.wait_done(record, workers)
        finally:
            self.n = saved_n
        stop(workers)
        app.close()
        waits = sorted((start - enqueued) * 1000 for _, enqueued, start in read(record))
        return {"p50": percentile(waits, 50), "p95": percentile(waits, 95),
                "p99": percentile(waits, 99), "max": waits[-1]}

    def priority(self, lows: int = 10_000, highs: int = 20) -> dict[str, float]:
        """Workload P: ``lows`` priority-1 tasks wait; 2 workers start; as soon as the first low
        one has run, ``highs`` priority-9 tasks arrive one by one. How long each high one waited
        (ms), and how many low ones started before the first and the last high one."""
        url, record = self.fresh()
        app.use(url)
        for first in range(0, lows, 1000):
            now = time.time()
            self.enqueue([((i, now), {}) for i in range(first, min(first + 1000, lows))],
                         priority=1)
        workers = self.start_workers(url, record, 2, burst=False)
        try:
            self._wait_records(record, workers, 1)
            for i in range(lows, lows + highs):
                self.enqueue([((i, time.time()), {})], priority=9)
            self._wait_records(record, workers, lows + highs)
        finally:
            stop(workers)
            app.close()
        check_exactly_once(record, lows + highs)
        records = read(record)
        high = sorted((start - enqueued) * 1000 for number, enqueued, start in records
                      if number >= lows)
        high_starts = [start for number, _, start in records if number >= lows]
        low_starts = [start for number, _, start in records if number < lows]
        return {"p50": percentile(high, 50), "max": high[-1],
                "lows_before_first": sum(s < min(high_starts) for s in low_starts),
                "lows_before_last": sum(s < max(high_starts) for s in low_starts)}

    def delayed(self, count: int = 200, ahead: tuple[float, float] = (1.0, 3.0)
                ) -> dict[str, float]:
        """Workload D: ``count`` tasks due 1-3 s ahead, idle worker; start - due in ms
        (negative: early, which must never happen)."""
        url, record = self.fresh()
        app.use(url)
        workers = self.start_workers(url, record, 1, burst=False)
        try:
            wait_registered(1, self.queue)
            rng = random.Random(20261122)
            for i in range(count):
                due = time.time() + rng.uniform(*ahead)
                self.task.options(queue=self.queue, eta=datetime.fromtimestamp(due, UTC)
                                  ).enqueue(i, due)
            self._wait_records(record, workers, count, timeout=ahead[1] + 60)
        finally:
            stop(workers)
            app.close()
        check_exactly_once(record, count)
        late = sorted((start - due) * 1000 for _, due, start in read(record))
        return {"p50": percentile(late, 50), "p99": percentile(late, 99), "max": late[-1],
                "early": sum(1 for x in late if x < 0)}

    def _wait_records(self, record: Path, workers: list[subprocess.Popen[bytes]], count: int,
                      timeout: float = 600.0) -> None:
        saved_n, self.n = self.n, count
        try:
            self.wait_done(record, workers, timeout)
        finally:
            self.n = saved_n


def baseline(url: str | None, workdir: Path, n: int) -> tuple[float, float]:
    """The ceiling of the store itself: (enqueue, drain) rates of a bare loop."""
    if url is None or url.startswith("sqlite:"):
        return sqlite_baseline(workdir, n)
    if url.startswith(("redis:", "rediss:")):
        return redis_baseline(url, n)
    return postgres_baseline(url, n)


_BARE_CLAIM = """
local popped = redis.call('ZPOPMIN', KEYS[1], ARGV[1])
local ids = {}
for i = 1, #popped, 2 do
    ids[#ids + 1] = popped[i]
    redis.call('ZADD', KEYS[2], ARGV[2], popped[i])
end
return ids
"""


def redis_baseline(url: str, n: int, batch: int = 200) -> tuple[float, float]:
    """The bare Lua loop of BENCHMARKS.md: ZADD 1,000 per call; then claim 200 per script
    (ZPOPMIN into a leased set) and acknowledge them in one more call (ZREM). No records, no
    status, no tokens: the ceiling of a Redis queue in one Python process."""
    import redis

    client = redis.Redis.from_url(url)
    tag = f"conveyor:bench:baseline:{{{os.getpid()}-{time.time()}}}"
    ready, leased = f"{tag}:ready", f"{tag}:leased"
    claim = client.register_script(_BARE_CLAIM)
    try:
        started = time.perf_counter()
        for first in range(0, n, 1000):
            client.zadd(ready, {f"t{i}": i for i in range(first, min(first + 1000, n))})
        enqueue = n / (time.perf_counter() - started)
        started = time.perf_counter()
        done = 0
        while done < n:
            ids = claim(keys=[ready, leased], args=[batch, time.time() + 30])
            if ids:
                client.zrem(leased, *ids)
            done += len(ids)
        return enqueue, n / (time.perf_counter() - started)
    finally:
        client.delete(ready, leased)
        client.close()


def postgres_baseline(url: str, n: int, batch: int = 200) -> tuple[float, float]:
    """Batched INSERT, then DELETE ... SKIP LOCKED ... RETURNING 200 at a time."""
    import psycopg

    payload = b"\x92\x92\x01\xcb" + bytes(8) + b"\x80"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE conveyor_bench_q (id bigserial PRIMARY KEY, p bytea)")
        started = time.perf_counter()
        for first in range(0, n, 1000):
            conn.execute("INSERT INTO conveyor_bench_q (p) SELECT %s FROM generate_series(1, %s)",
                         (payload, min(1000, n - first)))
        enqueue = n / (time.perf_counter() - started)
        started = time.perf_counter()
        done = 0
        while done < n:
            done += len(conn.execute(
                "DELETE FROM conveyor_bench_q WHERE id IN (SELECT id FROM conveyor_bench_q "
                "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id", (batch,)
            ).fetchall())
        return enqueue, n / (time.perf_counter() - started)


def sqlite_baseline(workdir: Path, n: int, batch: int = 200) -> tuple[float, float]:
    """The ceiling: bare SQLite, same durability, no bookkeeping at all."""
    conn = sqlite3.connect(workdir / "baseline.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE q (id INTEGER PRIMARY KEY, state INTEGER, payload BLOB)")
    conn.execute("CREATE INDEX q_ready ON q (id) WHERE state = 0")
    payload = b"\x92\x92\x01\xcb" + bytes(8) + b"\x80"
    started = time.perf_counter()
    for first in range(0, n, 1000):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO q (state, payload) VALUES (0, ?)",
                         [(payload,)] * min(1000, n - first))
        conn.execute("COMMIT")
    enqueue = n / (time.perf_counter() - started)
    started = time.perf_counter()
    done = 0
    while done < n:
        conn.execute("BEGIN IMMEDIATE")
        rows = conn.execute("UPDATE q SET state = 1 WHERE id IN (SELECT id FROM q WHERE "
                            "state = 0 ORDER BY id LIMIT ?) RETURNING id", (batch,)).fetchall()
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("DELETE FROM q WHERE id = ?", rows)
        conn.execute("COMMIT")
        done += len(rows)
    drain = n / (time.perf_counter() - started)
    conn.close()
    return enqueue, drain


def wait_registered(count: int, queue: str, timeout: float = 60.0) -> None:
    """Workers import and go idle before a measurement starts; that is not part of it."""
    deadline = time.monotonic() + timeout
    while sum(queue in w.queues for w in app.workers()) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} worker(s) did not register within {timeout}s")
        time.sleep(0.01)


def read(record: Path) -> list[tuple[int, float, float]]:
    data = record.read_bytes()
    return [RECORD.unpack_from(data, offset) for offset in range(0, len(data), RECORD.size)]


def check_exactly_once(record: Path, n: int) -> None:
    numbers = [number for number, _, _ in read(record)]
    if sorted(numbers) != list(range(n)):
        raise AssertionError(f"expected each of {n} tasks once, got {len(numbers)} records "
                             f"({len(set(numbers))} distinct)")


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        worker.wait(60)


def percentile(sorted_values: list[float], pct: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


def median_range(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def run(n: int = 20_000, repeats: int = 3, concurrency: int = 32, kind: str = "sync",
        log: Callable[[str], None] = print, url: str | None = None) -> dict[str, Any]:
    """All workloads, ``repeats`` times each; returns medians, ranges and baseline ratios."""
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
        workdir = Path(tmp)
        harness = Harness(workdir, n, concurrency, kind, log, url)
        store = "SQLite" if url is None else url.split(":", 1)[0]
        figures: dict[str, list[float]] = {k: [] for k in (
            "baseline_enqueue", "baseline_drain", "enqueue", "drain_1", "drain_2", "e2e_2")}
        for round_number in range(1, repeats + 1):
            log(f"round {round_number}/{repeats}: baseline (bare {store} loop)")
            round_dir = workdir / f"r{round_number}"
            round_dir.mkdir()
            base_enqueue, base_drain = baseline(url, round_dir, n)
            figures["baseline_enqueue"].append(base_enqueue)
            figures["baseline_drain"].append(base_drain)
            for processes in (1, 2):
                log(f"round {round_number}/{repeats}: enqueue {n:,} + drain with "
                    f"{processes} process(es)")
                enqueue_rate, drain_rate = harness.throughput(processes)
                figures["enqueue"].append(enqueue_rate)
                figures[f"drain_{processes}"].append(drain_rate)
            log(f"round {round_number}/{repeats}: end to end, 2 processes")
            figures["e2e_2"].append(harness.concurrent(2))
        log("pickup latency (1,000 tasks, one every 5 ms, 1 idle worker)")
        latency = harness.latency()
        log("priority under backlog (10,000 priority 1, then 20 priority 9, 2 workers)")
        priority = harness.priority()
        log("delayed precision (200 tasks due 1-3 s ahead, 1 idle worker)")
        delayed = harness.delayed()
    medians = {key: statistics.median(values) for key, values in figures.items()}
    return {
        "n": n, "repeats": repeats, "concurrency": concurrency, "kind": kind, "store": store,
        "figures": figures, "medians": medians,
        "ratios": {
            "enqueue_vs_baseline": medians["enqueue"] / medians["baseline_enqueue"],
            "drain_1_vs_baseline": medians["drain_1"] / medians["baseline_drain"],
            "drain_2_vs_baseline": medians["drain_2"] / medians["baseline_drain"],
        },
        "latency_ms": latency,
        "priority_ms": priority,
        "delayed_ms": delayed,
    }
