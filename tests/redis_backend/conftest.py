"""Fixtures of the Redis-specific tests: a fresh store on the session's private server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from conveyor.backends.redis.backend import RedisBackend
from redis_server import fresh_url, shared_server


@pytest.fixture
def redis_url() -> str:
    return fresh_url()


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client on the same store, to look behind the backend's back."""
    client = shared_server().client()
    yield client
    client.close()


@pytest.fixture
def backend(redis_url: str) -> Iterator[RedisBackend]:
    opened = RedisBackend(redis_url, durability="none")
    yield opened
    opened.close()


@pytest.fixture
def producer(redis_url: str) -> Iterator[RedisBackend]:
    """A second client, as a producer process would hold (hand-off tests)."""
    opened = RedisBackend(redis_url, durability="none")
    yield opened
    opened.close()
