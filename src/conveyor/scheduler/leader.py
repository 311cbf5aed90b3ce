"""Leader election by a lease lock with a TTL that the leader renews.

Any number of schedulers run; the one holding the lock leads. If it dies, the lock expires after
``ttl_seconds`` and the next contender's renewal takes it. Two schedulers that both believe they
lead (a paused leader waking after its TTL) are harmless: every cron run is enqueued with a
per-run idempotency key, so it becomes one task however many times it is sent.
"""

from __future__ import annotations

import logging

from conveyor.backends.base import AcquireLock, Backend, ReleaseLock
from conveyor.scheduler.loop import BackgroundLoop

log = logging.getLogger("conveyor.scheduler")


class Leader(BackgroundLoop):
    name = "leader"

    def __init__(self, backend: Backend, holder: str, lock: str = "cron",
                 ttl_seconds: float = 10.0) -> None:
        super().__init__(interval_seconds=ttl_seconds / 3)
        self.backend = backend
        self.holder = holder
        self.lock = lock
        self.ttl_seconds = ttl_seconds
        self.is_leader = False

    async def run_once(self) -> None:
        try:
            leading = await self.backend.aexecute(
                AcquireLock(self.lock, self.holder, self.ttl_seconds)
            )
        except Exception:
            self.is_leader = False  # unsure: step down until the backend answers again
            raise
        if leading != self.is_leader:
            log.info("%s %s the %r lock", self.holder, "took" if leading else "lost", self.lock)
        self.is_leader = leading

    async def resign(self) -> None:
        if self.is_leader:
            self.is_leader = False
            await self.backend.aexecute(ReleaseLock(self.lock, self.holder))
