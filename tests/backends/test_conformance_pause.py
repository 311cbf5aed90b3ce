"""PauseQueue: a paused queue keeps its tasks but gives none to any claim, until resumed."""

from __future__ import annotations

import asyncio

from backends.support import claim, claim_one, complete, enqueue, new_task, state
from conveyor import Conveyor
from conveyor.backends.base import Backend, Claim, PauseQueue, QueueStatsRead


def _paused(backend: Backend) -> set[str]:
    return {q.queue for q in backend.execute(QueueStatsRead()) if q.paused}


def test_a_paused_queue_gives_nothing_and_resume_gives_everything_back(backend: Backend) -> None:
    ids = enqueue(backend, *[new_task("a", priority=p) for p in (1, 5, 9)])
    backend.execute(PauseQueue("a", True))
    assert claim(backend, ["a"], limit=10) == []
    assert claim(backend, ["a"], limit=10, oldest_first=10) == []
    assert [state(backend, i) for i in ids] == ["PENDING"] * 3
    backend.execute(PauseQueue("a", False))
    taken = claim(backend, ["a"], limit=10)
    assert sorted(t.id for t in taken) == sorted(ids)


def test_pause_only_stops_its_own_queue(backend: Backend) -> None:
    [a] = enqueue(backend, new_task("a"))
    [b] = enqueue(backend, new_task("b"))
    backend.execute(PauseQueue("a", True))
    assert [t.id for t in claim(backend, ["a", "b"], limit=5)] == [b]
    assert state(backend, a) == "PENDING"


def test_pause_holds_across_clients_and_for_due_delayed_tasks(
    backend: Backend, other_backend: Backend, clock
) -> None:
    [task_id] = enqueue(backend, new_task("a", delay=5.0))
    other_backend.execute(PauseQueue("a", True))
    clock.advance(10.0)
    assert claim(backend, ["a"]) == []
    assert _paused(backend) == {"a"}
    other_backend.execute(PauseQueue("a", False))
    assert claim_one(backend, ["a"]).id == task_id


def test_running_tasks_of_a_paused_queue_still_finish(backend: Backend) -> None:
    enqueue(backend, new_task("a"))
    running = claim_one(backend, ["a"])
    backend.execute(PauseQueue("a", True))
    assert complete(backend, running) == []
    assert state(backend, running.id) == "DONE"


def test_stats_list_a_paused_queue_even_without_tasks(backend: Backend) -> None:
    backend.execute(PauseQueue("empty", True))
    enqueue(backend, new_task("busy"))
    stats = {q.queue: q for q in backend.execute(QueueStatsRead())}
    assert stats["empty"].paused and stats["empty"].counts == {}
    assert not stats["busy"].paused
    backend.execute(PauseQueue("empty", False))
    assert "empty" not in {q.queue for q in backend.execute(QueueStatsRead())}
    assert _paused(backend) == set()


def test_pausing_twice_and_resuming_an_unknown_queue_are_harmless(backend: Backend) -> None:
    backend.execute(PauseQueue("a", True))
    backend.execute(PauseQueue("a", True))
    backend.execute(PauseQueue("never-seen", False))
    assert _paused(backend) == {"a"}


def test_resume_wakes_an_idle_waiter(backend: Backend, other_backend: Backend) -> None:
    enqueue(backend, new_task("a"))
    backend.execute(PauseQueue("a", True))

    async def wait_then_claim() -> float:
        loop = asyncio.get_running_loop()
        assert await backend.aexecute(Claim("w", ["a"], 1, 30.0)) == []
        started = loop.time()
        resume = loop.run_in_executor(None, other_backend.execute, PauseQueue("a", False))
        await backend.wait_for_work(["a"], timeout=10.0)
        await resume
        return loop.time() - started

    assert asyncio.run(wait_then_claim()) < 5.0
    assert claim_one(backend, ["a"]).queue == "a"


def test_app_pause_resume_and_stats(app: Conveyor) -> None:
    app.pause("email")
    assert app.paused_queues() == {"email"}
    assert app.stats().queues["email"].paused
    app.resume("email")
    assert app.paused_queues() == set()
