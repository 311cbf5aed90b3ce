"""Enqueues the due runs of every cron schedule, while this process leads.

Each pass: renew leadership; if leading, read each schedule's newest enqueued run, enqueue what
is due since (per the misfire policy) with a per-run idempotency key, and record the newest run.
It sleeps until the next due run (at most ``max_sleep_seconds``), so a once-per-second schedule
is enqueued within milliseconds of its due time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from conveyor.backends.base import GetScheduleRuns, Now, RecordScheduleRun, ScheduleRun
from conveyor.schedule import Schedule, due_runs, next_due
from conveyor.scheduler.leader import Leader

if TYPE_CHECKING:
    from conveyor.app import Conveyor

log = logging.getLogger("conveyor.scheduler")


class CronScheduler:
    name = "cron"

    def __init__(self, app: Conveyor, holder: str, ttl_seconds: float = 10.0,
                 max_sleep_seconds: float = 1.0) -> None:
        self.app = app
        self.leader = Leader(app.backend, holder, "cron", ttl_seconds)
        self.max_sleep_seconds = max_sleep_seconds
        self.enqueued = 0
        self.passes = 0

    async def run_once(self) -> float:
        """One pass; returns the backend time of the next due run of any schedule."""
        backend = self.app.backend
        now = await backend.aexecute(Now())
        schedules = list(self.app.schedules.values())
        if not schedules:
            return now + self.max_sleep_seconds
        if self.leader.is_leader:
            runs = await backend.aexecute(GetScheduleRuns([s.name for s in schedules]))
            last = {run.name: run.last_due_at for run in runs}
            for schedule in schedules:
                await self._enqueue_due(schedule, last.get(schedule.name), now)
        return min(next_due(s, now) for s in schedules)

    async def _enqueue_due(self, schedule: Schedule, last_due: float | None, now: float) -> None:
        due = due_runs(schedule, last_due, now)
        if not due:
            if last_due is None:  # remember where this schedule starts counting
                await self.app.backend.aexecute(
                    RecordScheduleRun(ScheduleRun(schedule.name, now, None))
                )
            return
        task = self.app.get_task(schedule.task_name)
        handle = None
        for due_at in due:
            bound = task.options(idempotency_key=schedule.run_key(due_at), **schedule.options)
            handle = (await bound.aenqueue_many([(schedule.args, dict(schedule.kwargs))]))[0]
            if handle.created:
                self.enqueued += 1
        await self.app.backend.aexecute(RecordScheduleRun(
            ScheduleRun(schedule.name, due[-1], handle.id if handle else None)
        ))

    async def run(self, stop: asyncio.Event) -> None:
        """Lead (or wait to) and enqueue until ``stop`` is set; then resign the lock."""
        renew = asyncio.create_task(self.leader.run(stop))
        try:
            while not stop.is_set():
                sleep = self.max_sleep_seconds
                try:
                    next_at = await self.run_once()
                    now = await self.app.backend.aexecute(Now())
                    sleep = min(sleep, max(0.0, next_at - now))
                except Exception as exc:
                    log.warning("cron pass failed, retrying: %s", exc)
                self.passes += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), sleep)
        finally:
            await renew
            with contextlib.suppress(Exception):
                await self.leader.resign()
