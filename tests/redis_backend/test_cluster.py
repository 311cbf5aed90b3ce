"""Redis Cluster: partitions land on every master, one worker drains them all, ids are found
without a hint, and a worker carries on when a master restarts. On the session's private
three-master cluster (``redis_cluster.py``); slow, as the cluster takes seconds to form."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from backends.support import new_task
from conveyor import Conveyor, TaskState
from conveyor.backends.base import Claim, Enqueue
from conveyor.backends.redis import keys
from conveyor.backends.redis.backend import RedisBackend
from helpers import wait_until
from integration.conftest import RunningWorker
from redis_cluster import fresh_url, shared_cluster

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster_url() -> str:
    return fresh_url()


@pytest.fixture
def app(cluster_url: str) -> Iterator[Conveyor]:
    application = Conveyor(cluster_url, lease=5.0, backend_options={"durability": "none"})
    application.declare_queue("hot", partitions=8)
    yield application
    application.close()


def _keys_per_master(pattern: str) -> list[int]:
    counts = []
    for node in shared_cluster().nodes:
        with node.client() as client:
            counts.append(len(client.keys(pattern)))
    return counts


def test_partitions_land_on_every_master(app: Conveyor) -> None:
    @app.task(queue="hot")
    def noop(n: int) -> None: ...

    noop.enqueue_many([((n,), {}) for n in range(64)])
    per_master = _keys_per_master("conveyor:{hot*}:ready")
    assert sum(per_master) == 8 and all(n > 0 for n in per_master), per_master
    with shared_cluster().nodes[0].client() as client:
        slots = {client.execute_command("CLUSTER", "KEYSLOT", keys.tag_keys(tag).tasks)
                 for tag in keys.partition_tags("hot", 8)}
    assert len(slots) == 8
    assert app.stats().queues["hot"].count(TaskState.PENDING) == 64


def test_one_worker_drains_every_partition_end_to_end(app: Conveyor) -> None:
    @app.task(queue="hot", max_retries=1)
    def double(n: int) -> int:
        if n == 7 and double_calls.setdefault(n, 0) == 0:
            double_calls[n] = 1
            raise RuntimeError("first try fails")
        return 2 * n

    double_calls: dict[int, int] = {}
    handles = double.enqueue_many([((n,), {}) for n in range(100)])
    app.run_until_idle(["hot"], concurrency=8)
    assert [h.result(timeout=5) for h in handles] == [2 * n for n in range(100)]
    assert handles[7].info().attempts == 2
    assert app.stats().queues["hot"].count(TaskState.DONE) == 100


def test_ids_without_a_hint_and_keys_across_partitions(app: Conveyor) -> None:
    @app.task(queue="hot")
    def noop(n: int) -> None: ...

    handles = [noop.options(idempotency_key=f"order-{n}").enqueue(n) for n in range(16)]
    again = [noop.options(idempotency_key=f"order-{n}").enqueue(n) for n in range(16)]
    assert [h.id for h in again] == [h.id for h in handles]
    assert not any(h.created for h in again)
    assert all(app.get(h.id).state == TaskState.PENDING for h in handles)  # type: ignore[union-attr]
    assert app.cancel(handles[3].id) and app.cancel(handles[11].id)
    assert app.get(handles[3].id).state == TaskState.CANCELLED  # type: ignore[union-attr]
    assert sorted(app.requeue([handles[3].id, handles[11].id])) == sorted(
        [handles[3].id, handles[11].id])
    assert app.get(handles[11].id).state == TaskState.PENDING  # type: ignore[union-attr]
    assert app.get("00000000-0000-7000-8000-000000000000") is None


def test_an_idle_worker_wakes_at_once_and_delays_are_kept(app: Conveyor) -> None:
    started: list[float] = []
    ran = threading.Event()

    @app.task(queue="hot")
    def mark() -> None:
        started.append(time.monotonic())
        ran.set()

    worker = RunningWorker(app.worker(["hot"], concurrency=2)).start()
    try:
        latencies, lateness = [], []
        previous = None
        for _ in range(5):
            ran.clear()
            if previous is not None:  # the worker has acknowledged it and gone idle
                wait_until(lambda h=previous: h.info().state == TaskState.DONE)
            enqueued = time.monotonic()
            previous = mark.enqueue()
            assert ran.wait(5)
            latencies.append(started[-1] - enqueued)
        for _ in range(3):
            ran.clear()
            enqueued = time.monotonic()
            mark.options(delay=0.3).enqueue()
            assert ran.wait(5)
            lateness.append(started[-1] - (enqueued + 0.3))
        assert sorted(latencies)[2] < 0.05, latencies
        assert min(lateness) > -0.005 and sorted(lateness)[1] < 0.05, lateness
        print(f"cluster idle pickup (ms): {[round(x * 1000, 2) for x in latencies]}; "
              f"delayed start after due (ms): {[round(x * 1000, 2) for x in lateness]}")
    finally:
        assert worker.stop() == 0


def test_one_claim_spans_every_partition(cluster_url: str) -> None:
    backend = RedisBackend(cluster_url, durability="none")
    backend.declare_queue("hot", 8)
    try:
        backend.execute(Enqueue([new_task("hot") for _ in range(24)]))
        claimed = backend.execute(Claim("w", ["hot", "default"], 24, 30.0))
        assert len(claimed) == 24 and {t.queue for t in claimed} == {"hot"}
        partitions = {t.lease_token.split(".", 1)[0] for t in claimed}
        assert partitions == {str(p) for p in range(8)}
    finally:
        backend.close()


def test_a_worker_survives_a_master_restart(app: Conveyor) -> None:
    """The master's data is gone (no AOF in the test cluster): what is checked is that the
    worker keeps running through the outage and serves new work once the cluster is back."""
    @app.task(queue="hot")
    def square(n: int) -> int:
        return n * n

    worker = RunningWorker(app.worker(["hot"], concurrency=4)).start()
    cluster = shared_cluster()
    try:
        assert square.enqueue(3).result(timeout=10) == 9
        victim = cluster.nodes[1]
        victim.stop(kill=True)
        time.sleep(0.5)  # an outage the worker must sit through (nothing to wait for)
        victim.start()
        cluster.wait_ok()

        def served() -> bool:
            try:
                handles = square.enqueue_many([((n,), {}) for n in range(16)])
                return [h.result(timeout=10) for h in handles] == [n * n for n in range(16)]
            except Exception:
                return False

        wait_until(served, timeout=60, message="the worker serves every partition again")
        assert worker.thread.is_alive()
    finally:
        assert worker.stop() == 0


def test_closing_the_backend_stops_its_watchers(cluster_url: str) -> None:
    backend = RedisBackend(cluster_url, durability="none")
    backend.declare_queue("hot", 4)

    def watchers() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() if t.get_name().startswith("conveyor-signal-")
                and not t.done()]

    async def scenario() -> tuple[int, int]:
        await backend.wait_for_work(["hot"], 0.01)
        running = len(watchers())
        backend.close()
        for _ in range(300):  # up to one blocking chunk (1 s) and a margin
            if not watchers():
                break
            await asyncio.sleep(0.01)
        return running, len(watchers())

    assert asyncio.run(scenario()) == (4, 0)
