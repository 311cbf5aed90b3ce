"""Cron schedules as users declare them, and the pure arithmetic of which runs are due.

croniter does the parsing behind one small function (:func:`next_due`), so it can be swapped.
Five fields are minute-resolution cron; a sixth field is seconds.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from conveyor.errors import ConfigurationError

Misfire = Literal["skip", "catch_up"]


@dataclass(frozen=True)
class Schedule:
    """A task enqueued on a cron expression.

    Misfire policy, for runs whose due time passed while no scheduler led (all down, or a leader
    change in progress): ``"skip"`` enqueues a missed run only if it is at most
    ``misfire_grace_seconds`` late, so a leader change loses nothing but an outage does not
    replay a backlog; ``"catch_up"`` enqueues up to ``max_catch_up`` missed runs, oldest first.
    """

    name: str
    task_name: str
    expression: str
    timezone: str = "UTC"
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    misfire: Misfire = "skip"
    misfire_grace_seconds: float = 60.0
    max_catch_up: int = 10

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def run_key(self, due_at: float) -> str:
        """The idempotency key of one run: two leaders enqueueing it still make one task."""
        return f"cron:{self.name}:{due_at:.0f}"


def validate(schedule: Schedule, func: Any) -> Schedule:
    from croniter import croniter  # here, not at import: a worker without schedules skips it

    if not croniter.is_valid(schedule.expression):
        raise ConfigurationError(f"schedule {schedule.name!r}: invalid cron expression "
                                 f"{schedule.expression!r}")
    try:
        schedule.zone()
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"schedule {schedule.name!r}: unknown timezone "
                                 f"{schedule.timezone!r}") from None
    if schedule.misfire not in ("skip", "catch_up"):
        raise ConfigurationError("misfire must be 'skip' or 'catch_up'")
    if schedule.max_catch_up < 1 or schedule.misfire_grace_seconds < 0:
        raise ConfigurationError("max_catch_up must be >= 1 and misfire_grace_seconds >= 0")
    try:
        inspect.signature(func).bind(*schedule.args, **schedule.kwargs)
    except TypeError as exc:
        raise ConfigurationError(
            f"schedule {schedule.name!r}: the task cannot be called with args={schedule.args!r}"
            f" kwargs={schedule.kwargs!r}: {exc}"
        ) from None
    return schedule


def next_due(schedule: Schedule, after: float) -> float:
    """The first due time strictly after ``after`` (epoch seconds), in the schedule's zone."""
    from croniter import croniter

    start = datetime.fromtimestamp(after, tz=schedule.zone())
    following = croniter(schedule.expression, start).get_next(datetime)
    assert isinstance(following, datetime)
    return following.astimezone(UTC).timestamp()


def due_runs(schedule: Schedule, last_due: float | None, now: float) -> list[float]:
    """Due times to enqueue now, oldest first, given the newest run already enqueued.

    A schedule seen for the first time starts from ``now`` minus the grace, so a scheduler that
    starts a moment after a due time still enqueues that run.
    """
    start = last_due if last_due is not None else now - min(schedule.misfire_grace_seconds, 1.0)
    runs: list[float] = []
    due = next_due(schedule, start)
    while due <= now:
        runs.append(due)
        if len(runs) > 10_000:  # a fine-grained schedule after a long outage: keep the tail
            runs = runs[-schedule.max_catch_up:]
        due = next_due(schedule, due)
    if schedule.misfire == "catch_up":
        return runs[-schedule.max_catch_up:]
    return [run for run in runs if now - run <= schedule.misfire_grace_seconds]
