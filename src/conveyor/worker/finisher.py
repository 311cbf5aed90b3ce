"""Acknowledges finished tasks in batches: everything that finished while the previous batch
was in flight goes in the next one, so a busy worker pays one round trip per batch, not per task.

The metrics of the acknowledged attempts ride the same cycle: counted once the backend accepted
the outcome (a lost lease counts nothing), written as one ``RecordMetrics`` at most about once a
second, and at the final flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from conveyor.backends.base import Backend, Complete, Completion, Fail, Failure
from conveyor.worker.metrics import FLUSH_INTERVAL_SECONDS, MetricsRecorder, Sample

log = logging.getLogger("conveyor.worker")


class Finisher:
    def __init__(
        self, backend: Backend, on_settled: Callable[[int], None],
        metrics: MetricsRecorder | None = None,
    ) -> None:
        self.backend = backend
        self.metrics = metrics
        self._samples: dict[tuple[str, str], Sample] = {}
        """By attempt (task id, lease token), not by task: a task retried at once can fail,
        be claimed again and finish while its failure's acknowledgement is still in flight,
        and the second attempt's sample must not replace the first's."""
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

    def add(self, transition: Completion | Failure, sample: Sample | None = None) -> None:
        if sample is not None:
            self._samples[(transition.id, transition.lease_token)] = sample
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
            pending = self.metrics is not None and self.metrics.pending
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_INTERVAL_SECONDS if pending else None):
                    await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self, final: bool = False) -> None:
        """Write everything collected so far; on a backend error keep it for the next try.
        ``final``: the metrics too, however recent the last write (shutdown, end of a burst)."""
        await self._acknowledge()
        await self._record_metrics(final)

    async def _record_metrics(self, final: bool) -> None:
        if self.metrics is None or not (self.metrics.due() or (final and self.metrics.pending)):
            return
        op = self.metrics.take()
        if op is None:
            return
        try:
            await self.backend.aexecute(op)
        except Exception as exc:
            log.warning("writing metrics failed, keeping them for the next try: %s", exc)
            self.metrics.put_back(op)

    async def _acknowledge(self) -> None:
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
                self._count(completions, failures, set(lost))
                for task_id in lost:
                    log.warning("lease lost for task %s: another worker owns it now; "
                                "this attempt's outcome was discarded", task_id)
                self.lost_leases += len(lost)
                settled = len(completions) + len(failures)
                self.acknowledged += settled - len(lost)
                self._on_settled(settled)

    def _count(
        self, completions: list[Completion], failures: list[Failure], lost: set[str]
    ) -> None:
        if not self._samples:
            return
        attempts = ([(c.id, c.lease_token) for c in completions]
                    + [(f.id, f.lease_token) for f in failures])
        for attempt in attempts:
            sample = self._samples.pop(attempt, None)
            if sample is not None and self.metrics is not None and attempt[0] not in lost:
                self.metrics.add(sample)
