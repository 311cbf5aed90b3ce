"""The worker's prefetch buffer: claimed tasks waiting for a free slot.

Tasks leave it most urgent first, so a priority-9 task claimed behind a prefetched batch of
low-priority work overtakes that batch here too, not only in the backend. The same starvation
share as the claims applies: every ``1 / share``-th start takes the task that has waited longest,
whatever its priority, so a low-priority task claimed for fairness is not starved again locally.
The buffer holds at most ``concurrency + prefetch`` tasks, so a linear scan is cheaper than
keeping a heap and a queue in step.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from conveyor.backends.base import ClaimedTask


class PrefetchBuffer:
    def __init__(self, starvation_share: float) -> None:
        self._tasks: list[ClaimedTask] = []  # in arrival order
        self._share = starvation_share
        self._credit = 0.0

    def __len__(self) -> int:
        return len(self._tasks)

    def __bool__(self) -> bool:
        return bool(self._tasks)

    def __iter__(self) -> Iterator[ClaimedTask]:
        return iter(self._tasks)

    def extend(self, tasks: Iterable[ClaimedTask]) -> None:
        self._tasks.extend(tasks)

    def pop(self) -> ClaimedTask:
        """The next task to start: the most urgent (first arrived among equals), or the oldest
        when the starvation share is due."""
        self._credit += self._share
        if self._credit >= 1.0:
            self._credit -= 1.0
            return self._tasks.pop(0)
        tasks = self._tasks
        best = 0
        for index in range(1, len(tasks)):
            if tasks[index].priority > tasks[best].priority:
                best = index
        return tasks.pop(best)

    def discard(self, ids: set[str]) -> None:
        self._tasks = [t for t in self._tasks if t.id not in ids]

    def drain(self) -> list[ClaimedTask]:
        tasks, self._tasks = self._tasks, []
        return tasks
