"""Redis metrics keys: under the queue's hash tag, totals kept, per-minute counts expiring and
pruned, the pause flag a plain key."""

from __future__ import annotations

import time

import redis

from backends.support import enqueue, new_task
from conveyor.backends.base import MetricCount, PauseQueue, Prune, RecordMetrics
from conveyor.backends.redis import keys
from conveyor.backends.redis.backend import RedisBackend


def test_metrics_live_under_the_queue_tag_with_an_expiring_minutes_hash(
    backend: RedisBackend, raw: redis.Redis
) -> None:
    enqueue(backend, new_task("mail"))
    minute = int(time.time() // 60)
    backend.execute(RecordMetrics([MetricCount("mail", minute, "succeeded", 1)]))
    backend.execute(PauseQueue("mail", True))
    totals, minutes = keys.metrics(["mail"])
    assert totals == "conveyor:{mail}:totals" and minutes == "conveyor:{mail}:minutes"
    assert keys.paused("mail") == "conveyor:{mail}:paused"
    assert raw.hgetall(totals) == {b"enqueued": b"1", b"succeeded": b"1"}
    assert raw.hget(minutes, f"{minute}:enqueued") == b"1"
    assert raw.ttl(totals) == -1
    assert 3600 < raw.ttl(minutes) <= 3660


def test_old_minutes_are_pruned_and_totals_stay(backend: RedisBackend, raw: redis.Redis) -> None:
    enqueue(backend, new_task("mail"))
    old = int(time.time() // 60) - 120
    raw.hset(keys.metrics(["mail"])[1], f"{old}:succeeded", 5)
    raw.hdel(keys.metrics(["mail"])[1], "pruned")
    backend.execute(Prune())
    fields = raw.hkeys(keys.metrics(["mail"])[1])
    assert f"{old}:succeeded".encode() not in fields
    assert any(f.endswith(b":enqueued") for f in fields)
    assert raw.hget(keys.metrics(["mail"])[0], "enqueued") == b"1"
