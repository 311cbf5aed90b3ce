"""Returns tasks whose worker stopped heartbeating to the queue (or to the DLQ).

Any number of workers run it at once: each pass is one atomic transition, so a lease is
recovered exactly once whoever gets there first. The one that recovered them counts them in the
metrics (``expired``, and ``dead`` for those sent to the DLQ).
"""

from __future__ import annotations

import logging

from conveyor.backends.base import (
    Backend,
    MetricCount,
    Now,
    RecordMetrics,
    Recovered,
    RecoverExpired,
)
from conveyor.scheduler.loop import BackgroundLoop

log = logging.getLogger("conveyor.rescuer")


class Rescuer(BackgroundLoop):
    name = "rescuer"

    def __init__(self, backend: Backend, max_worker_lost: int, interval_seconds: float) -> None:
        super().__init__(interval_seconds)
        self.backend = backend
        self.max_worker_lost = max_worker_lost
        self.requeued = 0
        self.dead = 0

    async def run_once(self) -> None:
        recovered = await self.backend.aexecute(RecoverExpired(self.max_worker_lost))
        if recovered.requeued or recovered.dead:
            log.warning(
                "recovered %d expired lease(s): %d back to the queue, %d to the DLQ (worker_lost)",
                recovered.requeued + recovered.dead, recovered.requeued, recovered.dead,
            )
        self.requeued += recovered.requeued
        self.dead += recovered.dead
        if recovered.per_queue:
            await self._count(recovered)

    async def _count(self, recovered: Recovered) -> None:
        minute = int(await self.backend.aexecute(Now()) // 60)
        counts = []
        for queue, (requeued, dead) in recovered.per_queue.items():
            counts.append(MetricCount(queue, minute, "expired", float(requeued + dead)))
            if dead:
                counts.append(MetricCount(queue, minute, "dead", float(dead)))
        await self.backend.aexecute(RecordMetrics(counts))
