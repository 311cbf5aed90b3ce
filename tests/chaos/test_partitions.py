"""Stalls and partitions: one worker reaches the broker through a TCP proxy of the tests' own,
which cuts it off, black-holes it (connections held open, nothing forwarded) and slows it down,
then heals; and the Redis server itself is frozen with SIGSTOP.

Under a steady backlog: 0 lost, 0 worker crashes, and after healing the worker's own throughput
is back to >= 90% of what it was before the fault within 5 s (no worker hangs). SQLite has no
network between worker and store; it is not part of this file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from chaos.harness import TcpProxy, Workers, effect_lines, report, scaled
from conveyor import Conveyor
from conveyor.errors import BackendUnavailable
from helpers import wait_until
from redis_server import RedisServer

pytestmark = pytest.mark.slow
TASK_SECONDS = 0.05
RECOVERY_WINDOW_S = 5.0
MEASURE_S = 3.0


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit(":", 1)[0] if ":" in parts.netloc.split("@")[-1] else \
        parts.netloc
    return urlunsplit(parts._replace(netloc=f"{netloc}:{port}"))


def rate(effects: Path, pid: int | None, start: float, end: float) -> float:
    """Effects per second written by ``pid`` (every worker if None) between two epoch times."""
    n = sum(1 for f in effect_lines(effects)
            if (pid is None or int(f[3]) == pid) and start <= float(f[4]) < end)
    return n / (end - start)


def done(app: Conveyor) -> int:
    try:
        return app.stats().queues["chaos"].counts.get("DONE", 0)
    except BackendUnavailable:
        return 0


def fill(total: int) -> set[str]:
    from apps import chaos

    ids: set[str] = set()
    for start in range(0, total, 1000):
        ids |= {h.id for h in chaos.effect.enqueue_many(
            [((f"s{n}", TASK_SECONDS), {}) for n in range(start, min(total, start + 1000))])}
    return ids


def pause_for(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)  # the fault lasts this long: its duration, not a wait for a result


@pytest.mark.parametrize("backend", ["redis", "postgres"])
def test_a_worker_cut_off_black_holed_and_slowed_recovers(
    backend: str, url: str, app: Conveyor, workers: Callable[..., Workers]
) -> None:
    cut_s, hole_s, slow_s = scaled(15, 8), scaled(15, 8), scaled(10, 5)
    parts = urlsplit(url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 0).start()
    try:
        ids = fill(int((cut_s + hole_s + slow_s + 40) * 16 / TASK_SECONDS * 1.2))
        group = workers(url, lease=3.0, concurrency=4).start(3)
        group.processes.append(group.spawn(through(url, proxy.port)))
        group.wait_ready()
        victim = group.processes[-1].pid
        figures: dict[str, object] = {}
        for fault, seconds in (("cut", cut_s), ("blackhole", hole_s), ("latency", slow_s)):
            pause_for(MEASURE_S)
            now = time.time()
            before = rate(group.effects, victim, now - MEASURE_S, now)
            proxy.set_mode(fault, delay_seconds=0.2)
            pause_for(seconds)
            proxy.set_mode("pass")
            healed = time.time()
            pause_for(RECOVERY_WINDOW_S + MEASURE_S)
            after = rate(group.effects, victim, healed + RECOVERY_WINDOW_S,
                         healed + RECOVERY_WINDOW_S + MEASURE_S)
            figures[f"{fault}_s"] = seconds
            figures[f"{fault}_rate_before"] = round(before, 1)
            figures[f"{fault}_rate_after"] = round(after, 1)
            figures[f"{fault}_recovered"] = round(after / before, 2) if before else None
        wait_until(lambda: done(app) == len(ids), timeout=120, interval=0.5,
                   message="the backlog was not finished")
        lines = effect_lines(group.effects)
        crashed = group.crashed()
        report("partition", backend, **figures, lost=len(ids - {f[1] for f in lines}),
               worker_crashes=len(crashed))
        assert crashed == [], "no worker crashed"
        assert ids <= {f[1] for f in lines}, "0 lost"
        assert group.terminate_all() == [0, 0, 0, 0]
        slow = {fault: figures[f"{fault}_recovered"] for fault in ("cut", "blackhole", "latency")
                if (figures[f"{fault}_recovered"] or 0) < 0.9}
        assert not slow, (f"throughput not back to 90% within {RECOVERY_WINDOW_S}s of healing: "
                          f"{slow}: {figures}")
    finally:
        proxy.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory, "--appendonly", "yes", "--appendfsync", "everysec").start()
    yield server
    server.stop(kill=True)


def test_redis_frozen_for_10s(own_redis: RedisServer, workers: Callable[..., Workers]) -> None:
    from apps import chaos

    stall_s = scaled(10, 6)
    chaos.app.use(own_redis.url)
    try:
        ids = fill(int((stall_s + 30) * 12 / TASK_SECONDS * 1.2))
        group = workers(own_redis.url, lease=3.0, concurrency=4).start(3).wait_ready()
        pause_for(MEASURE_S)
        now = time.time()
        before = rate(group.effects, None, now - MEASURE_S, now)
        own_redis.pause()
        pause_for(stall_s)
        own_redis.resume()
        healed = time.time()
        pause_for(RECOVERY_WINDOW_S + MEASURE_S)
        after = rate(group.effects, None, healed + RECOVERY_WINDOW_S,
                     healed + RECOVERY_WINDOW_S + MEASURE_S)
        wait_until(lambda: done(chaos.app) == len(ids), timeout=120, interval=0.5)
        lines = effect_lines(group.effects)
        report("redis_stall", "redis", stall_s=stall_s, rate_before=round(before, 1),
               rate_after=round(after, 1), recovered=round(after / before, 2),
               lost=len(ids - {f[1] for f in lines}), worker_crashes=len(group.crashed()))
        assert group.crashed() == []
        assert ids <= {f[1] for f in lines}
        assert after >= 0.9 * before
        assert group.terminate_all() == [0, 0, 0]
    finally:
        chaos.app.close()
