"""The worker's prefetch buffer: claimed tasks waiting for a free slot.

Tasks leave it most urgent first, so a priority-9 task claimed behind a prefetched batch of
low-priority work overtakes that batch here too, not only in the backend. The same starvation
share as the claims applies: every ``1 / share``-th start takes the task that has waited longest,
whatever its priority, so a low-priority task claimed for fairness is not starved again locally.

One FIFO per priority (ten of them): a start costs a look at ten heads, not a scan of the
whole buffer, which holds up to ``concurrency + prefetch`` tasks (a scan per start cost a busy
worker with 256 of them about a tenth of its time).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator

from conveyor.backends.base import ClaimedTask

PRIORITIES = 10


class PrefetchBuffer:
    def __init__(self, starvation_share: float) -> None:
        self._bands: list[deque[tuple[int, ClaimedTask]]] = [
            deque() for _ in range(PRIORITIES)
        ]
        """Index = priority; (arrival number, task), oldest first."""
        self._arrivals = itertools.count()
        self._size = 0
        self._share = starvation_share
        self._credit = 0.0

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        return self._size > 0

    def __iter__(self) -> Iterator[ClaimedTask]:
        return iter(self._in_arrival_order())

    def extend(self, tasks: Iterable[ClaimedTask]) -> None:
        bands, arrivals = self._bands, self._arrivals
        for task in tasks:
            bands[min(max(task.priority, 0), PRIORITIES - 1)].append((next(arrivals), task))
            self._size += 1

    def top_priority(self) -> int | None:
        """The priority of the most urgent task held (None when empty)."""
        for priority in range(PRIORITIES - 1, -1, -1):
            if self._bands[priority]:
                return priority
        return None

    def pop(self) -> ClaimedTask:
        """The next task to start: the most urgent (first arrived among equals), or the oldest
        when the starvation share is due."""
        if not self._size:
            raise IndexError("pop from an empty prefetch buffer")
        self._credit += self._share
        if self._credit >= 1.0:
            self._credit -= 1.0
            band = min((b for b in self._bands if b), key=lambda b: b[0][0])
        else:
            band = next(b for b in reversed(self._bands) if b)
        self._size -= 1
        return band.popleft()[1]

    def discard(self, ids: set[str]) -> None:
        for priority, band in enumerate(self._bands):
            if any(task.id in ids for _, task in band):
                self._bands[priority] = deque(e for e in band if e[1].id not in ids)
        self._size = sum(len(b) for b in self._bands)

    def drain(self) -> list[ClaimedTask]:
        tasks = self._in_arrival_order()
        for band in self._bands:
            band.clear()
        self._size = 0
        return tasks

    def _in_arrival_order(self) -> list[ClaimedTask]:
        return [task for _, task in sorted(
            (e for band in self._bands for e in band), key=lambda e: e[0])]
