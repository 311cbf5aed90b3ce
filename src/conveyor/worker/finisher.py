"""Acknowledges finished tasks in batches: everything that finished while the previous batch
was in flight goes in the next one, so a busy worker pays one round trip per batch, not per task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from conveyor.backends.base import Backend, Complete, Completion, Fail, Failure

log = logging.getLogger("conveyor.worker")


class Finisher:
    def __init__(self, backend: Backend, on_settled: Callable[[int], None]) -> None:
        self.backend = backend
        self._completions: list[Completion] = []
        self._failures: list[Failure] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._on_settled = on_settled
        self.lost_leases = 0
        self.acknowledged = 0

    @property
    def pending(self) -> int:
        return len(self._completions) + len(self._failures)

    def add(self, transition: Completion | Failure) -> None:
        if isinstance(transition, Completion):
            self._completions.append(transition)
        else:
            self._failures.append(transition)
        self._wake.set()

    def wake(self) -> None:
        """Let ``run`` notice its stop event without waiting for another outcome."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write everything collected so far; on a backend error keep it for the next try."""
        async with self._lock:
            while self._completions or self._failures:
                completions, self._completions = self._completions, []
                failures, self._failures = self._failures, []
                try:
                    lost = []
                    if completions:
                        lost += await self.backend.aexecute(Complete(completions))
                    if failures:
                        lost += await self.backend.aexecute(Fail(failures))
                except Exception as exc:
                    log.warning("acknowledging %d task(s) failed, retrying: %s",
                                len(completions) + len(failures), exc)
                    self._completions[:0] = completions
                    self._failures[:0] = failures
                    await asyncio.sleep(0.5)
                    continue
                for task_id in lost:
                    log.warning("lease lost for task %s: another worker owns it now; "
                                "this attempt's outcome was discarded", task_id)
                self.lost_leases += len(lost)
                settled = len(completions) + len(failures)
                self.acknowledged += settled - len(lost)
                self._on_settled(settled)
