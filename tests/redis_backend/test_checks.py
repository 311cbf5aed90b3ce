"""Startup checks: warn about (or, strict, refuse) a Redis that cannot keep the promises of the
configured durability."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import redis

from conveyor.backends.base import Now
from conveyor.backends.redis.backend import RedisBackend
from conveyor.backends.redis.checks import problems_of
from conveyor.errors import ConfigurationError

SAFE = {"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction"}


@pytest.mark.parametrize(("change", "durability", "complaint"), [
    ({}, "always", None),
    ({"appendonly": "no"}, "always", "persistence is off"),
    ({"appendonly": "no"}, "everysec", "persistence is off"),
    ({"appendonly": "no"}, "none", None),
    ({"appendfsync": "everysec"}, "always", "appendfsync is 'everysec'"),
    ({"appendfsync": "everysec"}, "everysec", None),
    ({"maxmemory-policy": "allkeys-lru"}, "none", "maxmemory-policy"),
])
def test_problems_of_a_configuration(
    change: dict[str, str], durability: str, complaint: str | None
) -> None:
    problems = problems_of({**SAFE, **change}, durability)
    if complaint is None:
        assert problems == []
    else:
        assert len(problems) == 1 and complaint in problems[0]


def test_a_server_without_persistence_is_warned_about(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    backend = RedisBackend(redis_url)
    with caplog.at_level(logging.WARNING, "conveyor.backends.redis"):
        backend.execute(Now())
        backend.execute(Now())
    backend.close()
    warnings = [r.message for r in caplog.records if "persistence is off" in r.message]
    assert len(warnings) == 1, "checked once per backend"


def test_strict_refuses_a_server_without_persistence(redis_url: str) -> None:
    backend = RedisBackend(redis_url, strict=True)
    with pytest.raises(ConfigurationError, match="appendonly"):
        backend.execute(Now())
    backend.close()


@pytest.fixture
def durable_config(raw: redis.Redis) -> Iterator[None]:
    before = {k: raw.config_get(k)[k] for k in SAFE}
    for name, value in SAFE.items():
        raw.config_set(name, value)
    yield
    for name, value in before.items():
        raw.config_set(name, value)


@pytest.mark.usefixtures("durable_config")
def test_a_durable_server_passes_strict(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    backend = RedisBackend(redis_url, strict=True)
    with caplog.at_level(logging.WARNING, "conveyor.backends.redis"):
        assert backend.execute(Now()) > 0
    backend.close()
    assert caplog.records == []


def test_an_unknown_durability_is_refused(redis_url: str) -> None:
    with pytest.raises(ConfigurationError):
        RedisBackend(redis_url, durability="sometimes")
