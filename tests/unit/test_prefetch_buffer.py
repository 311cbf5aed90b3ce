"""The worker's prefetch buffer starts the most urgent task first, with the starvation share."""

from __future__ import annotations

from conveyor.backends.base import ClaimedTask
from conveyor.worker.buffer import PrefetchBuffer


def claimed(task_id: str, priority: int) -> ClaimedTask:
    return ClaimedTask(task_id, "t", "q", b"", priority, 1, 3, 0, "tok", 0.0, 0.0, 0.0, None,
                       None, 60.0)


def test_a_later_urgent_task_overtakes_prefetched_low_ones() -> None:
    buffer = PrefetchBuffer(starvation_share=0.0)
    buffer.extend(claimed(f"low{i}", 1) for i in range(5))
    buffer.extend([claimed("urgent", 9), claimed("mid", 5)])
    assert [buffer.pop().id for _ in range(3)] == ["urgent", "mid", "low0"]
    assert len(buffer) == 4


def test_the_share_takes_the_longest_waiting_task() -> None:
    buffer = PrefetchBuffer(starvation_share=0.25)
    buffer.extend([claimed("old-low", 1)])
    buffer.extend(claimed(f"high{i}", 9) for i in range(6))
    order = [buffer.pop().id for _ in range(4)]
    assert order == ["high0", "high1", "high2", "old-low"]


def test_discard_and_drain() -> None:
    buffer = PrefetchBuffer(starvation_share=0.1)
    buffer.extend([claimed("a", 5), claimed("b", 5), claimed("c", 5)])
    buffer.discard({"b"})
    assert [t.id for t in buffer] == ["a", "c"]
    assert [t.id for t in buffer.drain()] == ["a", "c"]
    assert not buffer


def test_top_priority_is_the_most_urgent_held() -> None:
    buffer = PrefetchBuffer(starvation_share=0.0)
    assert buffer.top_priority() is None
    buffer.extend([claimed("low", 1), claimed("mid", 5)])
    assert buffer.top_priority() == 5
    buffer.pop()
    assert buffer.top_priority() == 1
