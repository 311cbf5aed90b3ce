"""Deletes finished tasks whose result retention ran out, and workers long silent."""

from __future__ import annotations

from conveyor.backends.base import Backend, Prune
from conveyor.scheduler.loop import BackgroundLoop


class Pruner(BackgroundLoop):
    name = "pruner"

    def __init__(self, backend: Backend, interval_seconds: float = 60.0) -> None:
        super().__init__(interval_seconds)
        self.backend = backend
        self.pruned = 0

    async def run_once(self) -> None:
        self.pruned += await self.backend.aexecute(Prune())
        await self.backend.upkeep()
