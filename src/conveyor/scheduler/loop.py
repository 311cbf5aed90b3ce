"""The shape every background loop shares: ``run_once`` does one pass; ``run`` repeats it.

Tests call ``run_once`` directly, or wait on ``passes`` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger("conveyor.scheduler")


class BackgroundLoop:
    name = "loop"

    def __init__(self, interval_seconds: float) -> None:
        self.interval_seconds = interval_seconds
        self.passes = 0
        self._failing = False

    async def run_once(self) -> None:
        raise NotImplementedError

    async def run(self, stop: asyncio.Event) -> None:
        """Repeat until ``stop`` is set. A failing pass is logged once and retried next time."""
        while not stop.is_set():
            try:
                await self.run_once()
                if self._failing:
                    log.info("%s recovered", self.name)
                self._failing = False
            except Exception as exc:
                if not self._failing:
                    log.warning("%s failed, will retry: %s", self.name, exc)
                self._failing = True
            self.passes += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_seconds)
