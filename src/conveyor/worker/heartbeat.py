"""Keeps this worker's leases alive and its registry row fresh.

The leases are extended by a :class:`~conveyor.worker.lease_keeper.LeaseKeeper` process when one
runs (the default wherever another process can reach the store), so a task holding the GIL cannot
starve them; this loop then only hands the keeper the current set. Without a keeper (an in-memory
store) it extends them itself, from the event loop.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable

from conveyor.backends.base import (
    Backend,
    ClaimedTask,
    Extend,
    Lease,
    RegisterWorker,
    WorkerRow,
)
from conveyor.scheduler.loop import BackgroundLoop
from conveyor.worker.lease_keeper import LeaseKeeper

log = logging.getLogger("conveyor.worker")
KEEPER_SET_AFTER = 1024
"""Leases claimed between two whole sets sent to the keeper. It extends every lease it was
told of until the next set, finished ones too (each comes back lost once): with a set only
per heartbeat, a worker draining 4,000 tasks a second (10 s interval) would have it extend up
to 40,000 leases in one call and report as many lost back; in a 200,000-task drain those
reports and the claims' leases filled the pipe both ways (see :mod:`pipe`)."""


class Heartbeat(BackgroundLoop):
    name = "heartbeat"

    def __init__(
        self,
        backend: Backend,
        worker_id: str,
        queues: tuple[str, ...],
        concurrency: int,
        lease_seconds: float,
        started_at: float,
        leases: Callable[[], list[Lease]],
        busy: Callable[[], int],
        on_lost: Callable[[list[tuple[str, str]]], None],
        interval_seconds: float,
        keeper: LeaseKeeper | None = None,
    ) -> None:
        super().__init__(interval_seconds)
        self.backend = backend
        self.lease_seconds = lease_seconds
        self._leases = leases
        self._busy = busy
        self._on_lost = on_lost
        self.keeper = keeper
        self._added = 0
        """Leases claimed since the keeper last got the whole set."""
        self.row = WorkerRow(worker_id, socket.gethostname(), os.getpid(), queues, concurrency,
                             0, started_at, started_at)

    def registration(self) -> RegisterWorker:
        row = self.row
        return RegisterWorker(WorkerRow(row.id, row.host, row.pid, row.queues, row.concurrency,
                                        self._busy(), row.started_at, row.last_seen))

    def leases_claimed(self, claimed: list[ClaimedTask]) -> None:
        """New claims: the keeper must know them before the next tick, in case the loop blocks.
        Every ``KEEPER_SET_AFTER`` of them it gets the whole current set instead (they are in
        it), which drops the leases that ended since the last one."""
        if self.keeper is None or not self.keeper.running:
            return
        self._added += len(claimed)
        if self._added >= KEEPER_SET_AFTER:
            self._added = 0
            self.keeper.update(self._leases())
        else:
            self.keeper.add(claimed)

    async def run_once(self) -> None:
        leases = self._leases()
        if self.keeper is not None and self.keeper.running:
            self.keeper.update(leases)  # it starts from this set as soon as it is ready
            self._added = 0
        if (self.keeper is None or not self.keeper.alive) and leases:
            lost = set(await self.backend.aexecute(
                Extend(self.row.id, leases, self.lease_seconds)
            ))
            if lost:
                self._on_lost([(x.id, x.lease_token) for x in leases if x.id in lost])
        await self.backend.aexecute(self.registration())
