"""Partition tags and cluster URLs: pure functions, no server."""

from __future__ import annotations

import pytest

from conveyor.backends.base import NewTask
from conveyor.backends.redis import keys
from conveyor.backends.redis.backend import RedisBackend, cluster_nodes
from conveyor.backends.redis.partitions import Partitions
from conveyor.errors import ConfigurationError


def test_partition_tags_name_their_queue() -> None:
    assert keys.partition_tags("hot", 3) == ["hot", "hot#1", "hot#2"]
    assert [keys.queue_of(t) for t in keys.partition_tags("hot", 3)] == ["hot"] * 3
    assert [keys.partition_of(t) for t in keys.partition_tags("hot", 3)] == [0, 1, 2]
    assert keys.tag_keys("hot#2").ready == "conveyor:{hot#2}:ready"


def test_a_queue_name_that_reads_as_a_partition_is_refused() -> None:
    with pytest.raises(ValueError, match="digits"):
        keys.check_queue("hot#2")
    assert keys.check_queue("hot#a") == "hot#a"
    with pytest.raises(ValueError, match="braces"):
        Partitions().declare("a{b}", 2)


def test_a_key_always_goes_to_the_same_partition_and_others_spread() -> None:
    partitions = Partitions()
    partitions.declare("hot", 8)

    def task(key: str | None = None) -> NewTask:
        return NewTask("id", "t", "hot", b"", 5, 0, idempotency_key=key)

    assert len({partitions.tag_for(task("order-1")) for _ in range(20)}) == 1
    assert len({partitions.tag_for(task()) for _ in range(8)}) == 8
    starts = [partitions.tags_to_claim("hot")[0] for _ in range(8)]
    assert sorted(starts) == sorted(keys.partition_tags("hot", 8))


def test_cluster_urls() -> None:
    nodes, auth = cluster_nodes("redis+cluster://u:p%40ss@10.0.0.1:7000,[::1]:7001")
    assert nodes == [("10.0.0.1", 7000), ("::1", 7001)]
    assert auth == {"username": "u", "password": "p@ss"}
    assert cluster_nodes("redis+cluster://h:1")[1] == {}
    with pytest.raises(ConfigurationError, match="host:port"):
        cluster_nodes("redis+cluster://h1:7000,h2")
    assert RedisBackend("redis+cluster://h:1").cluster
    assert not RedisBackend("redis://h:1/0").cluster
