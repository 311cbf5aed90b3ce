"""Keeps this worker's leases alive and its registry row fresh.

It runs on the worker's event loop, beside the tasks: async tasks yield to it, sync tasks run in
threads or pool processes. A sync task holding the GIL in C code can delay it; such tasks belong
in the process pool (``executor="process"``), where the parent heartbeats untouched.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable

from conveyor.backends.base import Backend, Extend, Lease, RegisterWorker, WorkerRow
from conveyor.scheduler.loop import BackgroundLoop

log = logging.getLogger("conveyor.worker")


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
        on_lost: Callable[[list[str]], None],
        interval_seconds: float,
    ) -> None:
        super().__init__(interval_seconds)
        self.backend = backend
        self.lease_seconds = lease_seconds
        self._leases = leases
        self._busy = busy
        self._on_lost = on_lost
        self.row = WorkerRow(worker_id, socket.gethostname(), os.getpid(), queues, concurrency,
                             0, started_at, started_at)

    def registration(self) -> RegisterWorker:
        row = self.row
        return RegisterWorker(WorkerRow(row.id, row.host, row.pid, row.queues, row.concurrency,
                                        self._busy(), row.started_at, row.last_seen))

    async def run_once(self) -> None:
        leases = self._leases()
        if leases:
            lost = await self.backend.aexecute(Extend(self.row.id, leases, self.lease_seconds))
            if lost:
                log.warning("heartbeat: %d lease(s) lost (expired and taken over): %s",
                            len(lost), ", ".join(lost[:5]))
                self._on_lost(lost)
        await self.backend.aexecute(self.registration())
