"""Offers (0006_offers.sql): a single task due now wakes one idle worker, the one that has
waited longest, instead of every worker of its queue; batches, busy workers, expired offers
and workers that stop or die fall back to waking everyone."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from backends.support import enqueue, new_task
from conveyor import Conveyor, TaskState
from conveyor.backends.base import Enqueue, Prune, Waiter
from conveyor.backends.postgres.backend import OFFER_SECONDS, PostgresBackend
from helpers import wait_until

QUEUE = "offers"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def backends(pg_url: str) -> Iterator[Callable[..., PostgresBackend]]:
    made: list[PostgresBackend] = []

    def make(clock: Callable[[], float] | None = None) -> PostgresBackend:
        """A backend LISTENing from the start: no notification of the test can come before
        its listener does, so a count of 0 means it was not told."""
        backend = PostgresBackend(pg_url, clock=clock)
        made.append(backend)
        backend._ensure_listener()
        return backend

    yield make
    for backend in made:
        backend.close()


def _offers(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return [(w, q) for w, q in conn.execute(
            "SELECT worker_id, queue FROM conveyor_offers ORDER BY offered_at, worker_id")]


def _waiter(worker_id: str, open_: bool = True) -> Waiter:
    return Waiter(worker_id, 30.0, open_)


def _woken(backend: PostgresBackend) -> int:
    assert backend._listener is not None
    return backend._listener.notifications


async def _wait(backend: PostgresBackend, waiter: Waiter | None, timeout: float) -> float:
    """How long ``backend`` waited for work on QUEUE (its whole ``timeout`` when not woken)."""
    started = time.monotonic()
    await backend.wait_for_work([QUEUE], timeout, waiter)
    return time.monotonic() - started


def _race(url: str, producer: PostgresBackend, tasks: int,
          waits: list[tuple[PostgresBackend, Waiter | None]], timeout: float = 0.6
          ) -> list[float]:
    """Start every wait, in order, once the previous one has made its offer; enqueue ``tasks``
    tasks in one call; return how long each wait lasted."""

    async def main() -> list[float]:
        running = []
        for backend, waiter in waits:
            running.append(asyncio.create_task(_wait(backend, waiter, timeout)))
            if waiter is not None and waiter.open:
                await asyncio.to_thread(wait_until, lambda w=waiter: (  # type: ignore[misc]
                    w.worker_id in [o[0] for o in _offers(url)]), 5.0)
            else:
                # Not a wait for time to pass: one turn of the loop runs the new wait up to its
                # first suspension, by which it has read the listener's counts.
                await asyncio.sleep(0)
        await asyncio.to_thread(enqueue, producer, *[new_task(QUEUE) for _ in range(tasks)])
        return list(await asyncio.gather(*running))

    return asyncio.run(main())


def test_a_single_task_wakes_only_the_worker_that_offered_first(
        pg_url: str, backends: Callable[..., PostgresBackend]) -> None:
    first, second, bystander, producer = backends(), backends(), backends(), backends()
    waited = _race(pg_url, producer, 1, [(first, _waiter("w1")), (second, _waiter("w2")),
                                         (bystander, None)])
    assert waited[0] < 0.4, waited  # woken by its private channel
    assert waited[1] >= 0.55 and waited[2] >= 0.55, waited  # neither was told
    assert (_woken(first), _woken(second), _woken(bystander)) == (1, 0, 0)
    # Renewed offers keep their place: the first is still first.
    assert _offers(pg_url) == [("w1", QUEUE), ("w2", QUEUE)]


def test_a_batch_wakes_every_waiting_worker(
        pg_url: str, backends: Callable[..., PostgresBackend]) -> None:
    first, second, bystander, producer = backends(), backends(), backends(), backends()
    waited = _race(pg_url, producer, 2, [(first, _waiter("w1")), (second, _waiter("w2")),
                                         (bystander, None)])
    assert max(waited) < 0.4, waited
    assert (_woken(first), _woken(second), _woken(bystander)) == (1, 1, 1)


def test_a_delayed_task_wakes_every_waiting_worker(
        pg_url: str, backends: Callable[..., PostgresBackend]) -> None:
    """Every sleeping worker must recompute when the next task falls due."""
    first, bystander, producer = backends(), backends(), backends()

    async def main() -> list[float]:
        waits = [asyncio.create_task(_wait(first, _waiter("w1"), 0.6)),
                 asyncio.create_task(_wait(bystander, None, 0.6))]
        await asyncio.to_thread(wait_until, lambda: _offers(pg_url), 5.0)
        await asyncio.to_thread(enqueue, producer, new_task(QUEUE, delay=60.0))
        return list(await asyncio.gather(*waits))

    assert max(asyncio.run(main())) < 0.4
    assert (_woken(first), _woken(bystander)) == (1, 1)


def test_an_enqueue_in_a_callers_transaction_wakes_every_waiting_worker(
        pg_url: str, backends: Callable[..., PostgresBackend]) -> None:
    """Its notification leaves at the caller's commit, maybe long after the statement: the
    worker an offer named then may be busy, so no offer is taken."""
    waiting, bystander, producer = backends(), backends(), backends()

    def enqueue_in_transaction() -> None:
        with psycopg.connect(pg_url) as conn:
            producer.execute_on(conn, Enqueue([new_task(QUEUE)]))

    async def main() -> list[float]:
        waits = [asyncio.create_task(_wait(waiting, _waiter("w1"), 0.6)),
                 asyncio.create_task(_wait(bystander, None, 0.6))]
        await asyncio.to_thread(wait_until, lambda: _offers(pg_url), 5.0)
        await asyncio.to_thread(enqueue_in_transaction)
        return list(await asyncio.gather(*waits))

    assert max(asyncio.run(main())) < 0.4
    assert (_woken(waiting), _woken(bystander)) == (1, 1)


def test_a_busy_worker_withdraws_its_offer_and_the_next_one_is_woken(
        pg_url: str, backends: Callable[..., PostgresBackend]) -> None:
    busy, idle, producer = backends(), backends(), backends()
    _race(pg_url, producer, 0, [(busy, _waiter("busy")), (idle, _waiter("idle"))], 0.1)
    assert _offers(pg_url) == [("busy", QUEUE), ("idle", QUEUE)]
    waited = _race(pg_url, producer, 1, [(busy, _waiter("busy", open_=False)),
                                         (idle, _waiter("idle"))])
    assert waited[1] < 0.4 and waited[0] >= 0.55, waited
    assert (_woken(busy), _woken(idle)) == (0, 1)
    # Open again, it offers behind the worker that kept waiting.
    _race(pg_url, producer, 0, [(busy, _waiter("busy"))], 0.1)
    assert _offers(pg_url) == [("idle", QUEUE), ("busy", QUEUE)]


def test_an_expired_offer_is_passed_over(
        pg_url: str, backends: Callable[..., PostgresBackend]) -> None:
    """A worker that died while waiting stops drawing single tasks once its offer lapses."""
    clock = Clock(1_000_000.0)
    gone, bystander, producer = backends(clock), backends(), backends(clock)
    _race(pg_url, producer, 0, [(gone, _waiter("gone"))], 0.05)
    assert _offers(pg_url) == [("gone", QUEUE)]
    clock.now += OFFER_SECONDS + 0.001
    waited = _race(pg_url, producer, 1, [(bystander, None)])
    assert waited[0] < 0.4, waited
    assert _woken(bystander) == 1


def test_a_stopping_worker_withdraws_and_prune_drops_dead_offers(
        pg_url: str, backends: Callable[..., PostgresBackend]) -> None:
    clock = Clock(1_000_000.0)
    stopping, dead = backends(clock), backends(clock)
    _race(pg_url, dead, 0, [(stopping, _waiter("stopping")), (dead, _waiter("dead"))], 0.05)
    assert len(_offers(pg_url)) == 2
    asyncio.run(stopping.withdraw([QUEUE], _waiter("stopping")))
    assert _offers(pg_url) == [("dead", QUEUE)]
    clock.now += 59.0
    dead.execute(Prune(worker_silence_seconds=3600.0, metrics_retention_seconds=3600.0))
    assert _offers(pg_url) == [("dead", QUEUE)]  # lapsed, but a live worker may renew it
    clock.now += 5.0
    dead.execute(Prune(worker_silence_seconds=3600.0, metrics_retention_seconds=3600.0))
    assert _offers(pg_url) == []


@pytest.mark.slow
def test_single_tasks_reach_a_worker_after_the_one_that_offered_first_is_killed(
        pg_url: str, start_worker: Callable[..., subprocess.Popen[bytes]]) -> None:
    """Real processes: two idle workers offer; the first is SIGKILLed while waiting. Single
    tasks sent its way meanwhile are not lost: the survivor runs them once the dead offer
    lapses (OFFER_SECONDS), within its idle timeout at the latest."""
    first = start_worker(pg_url, "-q", "pings", "--concurrency", "2")
    wait_until(lambda: len(_offers(pg_url)) == 1, 30.0, message="(first offer)")
    start_worker(pg_url, "-q", "pings", "--concurrency", "2")
    wait_until(lambda: len(_offers(pg_url)) == 2, 30.0, message="(second offer)")
    from apps import pg

    app = Conveyor(pg_url)
    app.tasks.update(pg.app.tasks)  # the workers' tasks, by name, on this test's database
    try:
        before = []
        for n in range(5):  # one at a time, each done before the next: all to the first
            before.append(app.enqueue(pg.ping.name, (n,)))
            assert before[-1].result(timeout=10.0) == n
        assert {h.info().worker_id.split(":")[1] for h in before} == {str(first.pid)}
        assert len(_offers(pg_url)) == 2
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        started = time.monotonic()
        after = [app.enqueue(pg.ping.name, (n,)) for n in range(5)]
        for n, handle in enumerate(after):
            assert handle.result(timeout=20.0) == n
        took = time.monotonic() - started
        assert took < OFFER_SECONDS + 5.0 + 2.0, took  # the lapse, the idle timeout, slack
        assert all(h.info().state == TaskState.DONE for h in before + after)
    finally:
        app.close()
