"""Soak: a steady rate for a sustained run, sampling worker and broker memory and latency.

Full run: 10 minutes (``CONVEYOR_CHAOS_SCALE=1``; ``CONVEYOR_CHAOS_SOAK_SECONDS`` for longer).
Worker RSS (with its lease keeper) must stay within a bound of what it was after warm-up, and
end-to-end latency p99 must not drift. Finished tasks expire after 30 s (``result_ttl``) and the
pruner reaps them once a minute, so broker memory is bounded too; it is asserted on runs of 5
minutes or more, and reported always. Bounded means levelling off: a store can take minutes to
reach its steady size (PostgreSQL's indexes settle into the churn of inserts, prunes and
vacuums over about seven), so the last third is compared with the middle third, where a leak,
growing with every task, stays as steep as ever (without its vacuum, PostgreSQL's tables grew
by half again in the last third: 5.7, 9.9, 14.4, ... 39.9, 44.6 MiB by tenth; with it they
levelled off at 19.5).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from chaos.harness import Workers, children, effect_lines, percentile, report, rss_kib, scaled
from conveyor import Conveyor
from helpers import wait_until

pytestmark = pytest.mark.slow
RATE_PER_SECOND = 200
RESULT_TTL_S = 30.0


def broker_bytes(backend: str, app: Conveyor, url: str) -> int:
    """What the store holds: Redis used_memory, the SQLite files, the PostgreSQL tables."""
    if backend == "redis":
        import redis

        with redis.Redis.from_url(url) as client:
            return int(client.info("memory")["used_memory"])
    if backend == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                           "JOIN pg_namespace n ON n.oid = c.relnamespace "
                           "WHERE n.nspname = current_schema() AND c.relkind = 'r'").fetchone()
    return int(row[0] or 0) if row else 0


def by_tenth(samples: list[tuple[float, int, int]], seconds: float) -> list[float]:
    """The broker's peak MiB in each tenth of the run: its shape, for the report."""
    peaks = [[s[2] for s in samples if t * seconds / 10 <= s[0] < (t + 1) * seconds / 10]
             for t in range(10)]
    return [round(max(p) / 2**20, 1) for p in peaks if p]


def test_soak_steady_rate_bounded_memory_stable_latency(
    backend: str, url: str, app: Conveyor, workers: Callable[..., Workers]
) -> None:
    from apps import chaos

    seconds = int(os.environ.get("CONVEYOR_CHAOS_SOAK_SECONDS") or scaled(600, 60))
    group = workers(url, lease=5.0, concurrency=8).start(2).wait_ready()
    stop = threading.Event()
    sent = [0]

    def produce() -> None:
        producer = Conveyor(url)
        producer.tasks.update(chaos.app.tasks)
        began = time.monotonic()
        try:
            while not stop.is_set():
                due = sent[0] / RATE_PER_SECOND - (time.monotonic() - began)
                if due > 0:
                    stop.wait(due)
                    continue
                producer.enqueue(chaos.effect.name, (f"{time.time():.6f}", 0.0),
                                 result_ttl=RESULT_TTL_S)
                sent[0] += 1
        finally:
            producer.close()

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    samples: list[tuple[float, int, int]] = []  # (elapsed, worker KiB, broker bytes)
    began = time.monotonic()
    try:
        while (elapsed := time.monotonic() - began) < seconds:
            pids = [p.pid for p in group.processes]
            worker_kib = sum(rss_kib(p) + sum(rss_kib(c) for c in children(p)) for p in pids)
            samples.append((elapsed, worker_kib, broker_bytes(backend, app, url)))
            time.sleep(max(1.0, seconds / 60))  # the sampling period
    finally:
        stop.set()
        thread.join(30)
    wait_until(lambda: len(effect_lines(group.effects)) >= sent[0], timeout=60, interval=0.5,
               message="the soak's tasks did not all run")
    assert group.crashed() == []
    assert group.terminate_all() == [0, 0]
    lines = effect_lines(group.effects)
    latency = [(float(f[2]), float(f[4]) - float(f[2])) for f in lines]
    start = min(t for t, _ in latency)
    third = seconds / 3

    def p99(lo: float, hi: float) -> float:
        return percentile([lat for t, lat in latency if lo <= t - start < hi], 0.99)

    warm = [s for s in samples if s[0] >= min(30.0, third)]
    first, last = warm[: max(1, len(warm) // 3)], warm[-max(1, len(warm) // 3):]
    rss_first, rss_last = max(s[1] for s in first), max(s[1] for s in last)
    broker_first, broker_last = max(s[2] for s in first), max(s[2] for s in last)
    middle = [s for s in samples if third <= s[0] < 2 * third] or first
    broker_middle = max(s[2] for s in middle)
    p99_first, p99_last = p99(0, third), p99(2 * third, seconds)
    report("soak", backend, seconds=seconds, rate_per_s=RATE_PER_SECOND, tasks=sent[0],
           ran=len(lines), worker_rss_first_mib=round(rss_first / 1024, 1),
           worker_rss_last_mib=round(rss_last / 1024, 1),
           broker_first_mib=round(broker_first / 2**20, 2),
           broker_middle_mib=round(broker_middle / 2**20, 2),
           broker_last_mib=round(broker_last / 2**20, 2),
           latency_p99_first_ms=round(p99_first * 1000, 1),
           latency_p99_last_ms=round(p99_last * 1000, 1),
           latency_p50_ms=round(percentile([lat for _, lat in latency], 0.5) * 1000, 1),
           broker_mib_by_tenth=by_tenth(samples, seconds))
    assert len({f[1] for f in lines}) == sent[0], "every task ran"
    assert rss_last <= rss_first * 1.2 + 16 * 1024, "worker memory stays within its bound"
    assert p99_last <= 2 * p99_first + 0.05, "latency p99 stable"
    if seconds >= 300:
        assert broker_last <= broker_middle * 1.3 + 2**20, "broker memory levels off"
