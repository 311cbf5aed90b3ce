"""Configuration that cannot work is refused where it is written, with the reason: the app's
settings, alert thresholds, task options and a Redis URL's query options."""

from __future__ import annotations

import math

import pytest

from conveyor import Conveyor
from conveyor.backends.redis.backend import RedisBackend
from conveyor.errors import ConfigurationError, InvalidOptionError

URL = "sqlite:///:memory:"


@pytest.mark.parametrize("settings", [
    {"lease": math.nan}, {"lease": math.inf}, {"lease": 0}, {"lease": True},
    {"result_ttl": -1}, {"result_ttl": math.nan},
    {"max_payload_bytes": 0}, {"max_payload_bytes": -1}, {"max_payload_bytes": 1.5},
    {"starvation_share": math.nan}, {"max_worker_lost": 0},
])
def test_app_settings_that_cannot_work_are_refused(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match=next(iter(settings))):
        Conveyor(URL, **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(("thresholds", "message"), [
    ({"max_p99_seconds": math.nan}, "finite"),
    ({"max_depth": math.inf}, "finite"),
    ({"max_dead_per_minute": True}, "finite"),
    ({"min_utilization": 0.9, "max_utilization": 0.2}, "always be breached"),
])
def test_alert_thresholds_that_cannot_work_are_refused(
    thresholds: dict[str, float], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Conveyor(URL).alert(queue="q", **thresholds)  # type: ignore[arg-type]


def test_an_empty_queue_name_is_refused_when_the_task_is_declared() -> None:
    app = Conveyor(URL)
    with pytest.raises(InvalidOptionError, match="queue"):
        app.task(queue="")(lambda: None)
    assert app.task(name="t")(lambda: None).defaults.queue == "default"


def test_a_timeout_says_what_it_must_be() -> None:
    task = Conveyor(URL).task(name="t")(lambda: None)
    for bad in (0, -1, math.inf):
        with pytest.raises(InvalidOptionError, match=r"timeout must be .* > 0"):
            task.options(timeout=bad)
    assert task.options(timeout=0.5).opts.timeout == 0.5


def test_redis_url_options_of_conveyor_are_taken_from_the_query() -> None:
    backend = RedisBackend("redis://127.0.0.1:1/0?strict=true&durability=none&socket_timeout=3")
    try:  # nothing connects until the first command
        assert (backend.strict, backend.durability) == (True, "none")
        assert backend.url == "redis://127.0.0.1:1/0?socket_timeout=3"
    finally:
        backend.close()
    with pytest.raises(ConfigurationError, match="strict='maybe'"):
        RedisBackend("redis://127.0.0.1:1/0?strict=maybe")
    with pytest.raises(ConfigurationError, match="durability"):
        RedisBackend("redis://127.0.0.1:1/0?durability=sometimes")


def test_a_redis_url_option_redis_py_does_not_know_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="bogus"):
        RedisBackend("redis://127.0.0.1:1/0?bogus=1")


def test_options_no_store_can_hold_are_refused_at_enqueue_time() -> None:
    """A due date past the year 9999 broke every read of its task; PostgreSQL refuses NUL in
    text and integers past 2**31 with errors of its own: each is an InvalidOptionError here,
    on every backend, before anything is written."""
    task = Conveyor(URL).task(name="t")(lambda: None)
    for options, field in [({"delay": 10**12}, "delay"), ({"delay": 1e300}, "delay"),
                           ({"timeout": 1e300}, "timeout"), ({"result_ttl": 1e12}, "result_ttl"),
                           ({"max_retries": 10**12}, "max_retries"),
                           ({"queue": "q\x00x"}, "queue"),
                           ({"idempotency_key": "a\x00b"}, "idempotency_key")]:
        with pytest.raises(InvalidOptionError, match=field):
            task.options(**options)  # type: ignore[arg-type]
    assert task.options(delay=30 * 365 * 86400, max_retries=1000).opts.max_retries == 1000
