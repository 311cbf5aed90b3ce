"""``conveyor scheduler``: the cron scheduler alone, in its own process.

Any number may run (and workers started with ``--scheduler``); one leads at a time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import uuid
from typing import TYPE_CHECKING

from conveyor.scheduler.cron import CronScheduler

if TYPE_CHECKING:
    from conveyor.app import Conveyor

log = logging.getLogger("conveyor.scheduler")


class SchedulerProcess:
    def __init__(self, app: Conveyor, leader_ttl: float = 10.0, holder: str | None = None) -> None:
        self.app = app
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.cron = CronScheduler(app, self.holder, leader_ttl)
        self.started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self, install_signal_handlers: bool = False) -> int:
        return asyncio.run(self._main(install_signal_handlers))

    async def _main(self, install_signal_handlers: bool) -> int:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if install_signal_handlers:
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(signum, self._stop.set)
        log.info("scheduler %s started: %d schedule(s)", self.holder, len(self.app.schedules))
        self.started.set()
        try:
            await self.cron.run(self._stop)
        finally:
            await self.app.backend.release_loop()  # this loop ends here
        log.info("scheduler %s stopped (%d run(s) enqueued)", self.holder, self.cron.enqueued)
        return 0

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
