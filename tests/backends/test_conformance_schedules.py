"""Leadership locks and cron schedule bookkeeping: AcquireLock, ReleaseLock, RecordScheduleRun,
GetScheduleRuns."""

from __future__ import annotations

from conveyor.backends.base import (
    AcquireLock,
    Backend,
    GetScheduleRuns,
    RecordScheduleRun,
    ReleaseLock,
    ScheduleRun,
)


def test_a_free_lock_is_taken_and_then_refused_to_others(backend: Backend, clock) -> None:
    assert backend.execute(AcquireLock("cron", "a", 10.0)) is True
    assert backend.execute(AcquireLock("cron", "b", 10.0)) is False
    assert backend.execute(AcquireLock("other", "b", 10.0)) is True, "locks are per name"


def test_the_holder_renews_and_keeps_the_lock(backend: Backend, clock) -> None:
    backend.execute(AcquireLock("cron", "a", 10.0))
    clock.advance(8.0)
    assert backend.execute(AcquireLock("cron", "a", 10.0)) is True
    clock.advance(8.0)  # 16 s after the first take, 8 s after the renewal
    assert backend.execute(AcquireLock("cron", "b", 10.0)) is False


def test_an_expired_lock_passes_to_the_next_contender(backend: Backend, clock) -> None:
    backend.execute(AcquireLock("cron", "a", 10.0))
    clock.advance(10.5)
    assert backend.execute(AcquireLock("cron", "b", 10.0)) is True
    assert backend.execute(AcquireLock("cron", "a", 10.0)) is False, "the old leader lost it"


def test_release_frees_the_lock_only_for_its_holder(backend: Backend, clock) -> None:
    backend.execute(AcquireLock("cron", "a", 10.0))
    backend.execute(ReleaseLock("cron", "b"))
    assert backend.execute(AcquireLock("cron", "b", 10.0)) is False
    backend.execute(ReleaseLock("cron", "a"))
    assert backend.execute(AcquireLock("cron", "b", 10.0)) is True


def test_schedule_runs_are_recorded_and_never_move_backwards(backend: Backend) -> None:
    assert backend.execute(GetScheduleRuns(["tick"])) == []
    backend.execute(RecordScheduleRun(ScheduleRun("tick", 100.0, "t1")))
    backend.execute(RecordScheduleRun(ScheduleRun("tick", 90.0, "t0")))
    assert backend.execute(GetScheduleRuns(["tick", "nope"])) == [ScheduleRun("tick", 100.0, "t1")]
    backend.execute(RecordScheduleRun(ScheduleRun("tick", 101.0, "t2")))
    assert backend.execute(GetScheduleRuns(["tick"])) == [ScheduleRun("tick", 101.0, "t2")]
