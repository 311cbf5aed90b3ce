"""Which cron runs are due: misfire policies, time zones, seconds, validation."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from conveyor import ConfigurationError, Conveyor
from conveyor.schedule import Schedule, due_runs, next_due, validate


def at(text: str, zone: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def test_next_due_follows_the_expression_in_its_time_zone() -> None:
    berlin = Schedule("r", "t", "0 9 * * *", timezone="Europe/Berlin")
    assert next_due(berlin, at("2026-03-28 12:00")) == at("2026-03-29 09:00", "Europe/Berlin")
    # across the spring DST change, 09:00 Berlin moves from 08:00 to 07:00 UTC
    assert next_due(berlin, at("2026-03-28 07:00")) == at("2026-03-28 08:00")
    assert next_due(berlin, at("2026-03-29 06:00")) == at("2026-03-29 07:00")


def test_six_fields_schedule_by_the_second() -> None:
    tick = Schedule("tick", "t", "* * * * * *")
    assert next_due(tick, at("2026-01-01 00:00:00")) == at("2026-01-01 00:00:01")


def test_runs_since_the_last_one_are_due_in_order() -> None:
    tick = Schedule("tick", "t", "* * * * * *")
    start = at("2026-01-01 00:00:00")
    assert due_runs(tick, start, start + 3.5) == [start + 1, start + 2, start + 3]
    assert due_runs(tick, start + 3, start + 3.5) == []


def test_skip_drops_runs_older_than_the_grace() -> None:
    every_minute = Schedule("m", "t", "* * * * *", misfire="skip", misfire_grace_seconds=90)
    last = at("2026-01-01 00:00")
    now = at("2026-01-01 01:00:30")
    assert due_runs(every_minute, last, now) == [at("2026-01-01 00:59"), at("2026-01-01 01:00")]


def test_catch_up_enqueues_at_most_n_missed_runs() -> None:
    every_minute = Schedule("m", "t", "* * * * *", misfire="catch_up", max_catch_up=3)
    last = at("2026-01-01 00:00")
    now = at("2026-01-01 01:00:30")
    assert due_runs(every_minute, last, now) == [
        at("2026-01-01 00:58"), at("2026-01-01 00:59"), at("2026-01-01 01:00")
    ]


def test_a_new_schedule_starts_now_not_at_the_epoch() -> None:
    every_minute = Schedule("m", "t", "* * * * *", misfire="catch_up")
    assert due_runs(every_minute, None, at("2026-01-01 00:10:30")) == []
    assert due_runs(every_minute, None, at("2026-01-01 00:10:00.4")) == [at("2026-01-01 00:10")]


def test_run_keys_name_schedule_and_due_time() -> None:
    tick = Schedule("tick", "t", "* * * * * *")
    assert tick.run_key(1700000000.0) == "cron:tick:1700000000"


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (Schedule("x", "t", "61 * * * *"), "invalid cron expression"),
        (Schedule("x", "t", "* * * * *", timezone="Mars/Base"), "unknown timezone"),
        (Schedule("x", "t", "* * * * *", misfire="later"), "misfire"),  # type: ignore[arg-type]
        (Schedule("x", "t", "* * * * *", args=(1, 2)), "cannot be called"),
    ],
)
def test_invalid_schedules_are_refused(schedule: Schedule, message: str) -> None:
    def no_arguments() -> None: ...

    with pytest.raises(ConfigurationError, match=message):
        validate(schedule, no_arguments)


def test_app_cron_and_schedule_register_validated_schedules(tmp_path) -> None:
    app = Conveyor(f"sqlite:///{tmp_path / 'c.db'}")

    @app.cron("*/5 * * * *", timezone="Europe/Berlin", queue="reports")
    def nightly_report() -> None: ...

    @app.task
    def send_email(to: str) -> None: ...

    app.schedule(send_email, cron="0 9 * * MON", args=("ops@x",), name="weekly-digest",
                 priority=9)
    assert set(app.schedules) == {nightly_report.name, "weekly-digest"}
    assert app.schedules["weekly-digest"].options == {"priority": 9}
    assert nightly_report.defaults.queue == "reports"
    with pytest.raises(ConfigurationError, match="cannot be called"):
        app.schedule(send_email, cron="0 9 * * MON")  # a required argument is missing
    with pytest.raises(ConfigurationError, match="invalid cron"):
        app.cron("nonsense")(send_email)
