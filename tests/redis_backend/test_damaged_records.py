"""A stored record the scripts cannot read (written by hand, by another version, or damaged)
goes to the dead letters with the decode error when a transition takes it from its index; it
must never fail the claims of its whole queue, nor the reads of it."""

from __future__ import annotations

import redis

from backends.support import claim, enqueue, new_task, row
from conveyor.backends.base import ListTasks, QueueStatsRead, RecoverExpired
from conveyor.backends.redis import keys
from conveyor.backends.redis.backend import RedisBackend

QUEUE = keys.tag_keys("default")
GARBAGE = b"\xc1 not msgpack"
NOT_A_RECORD = b"\x93\x01\x02\x03"  # msgpack, but [1, 2, 3]


def damage(raw: redis.Redis, task_id: str, value: bytes) -> None:
    assert raw.hset(QUEUE.tasks, keys.encode_id(task_id), value) == 0, "overwrites a record"


def test_damaged_ready_records_are_buried_and_the_claim_takes_the_rest(
    backend: RedisBackend, raw: redis.Redis
) -> None:
    ids = enqueue(backend, *(new_task() for _ in range(5)))
    damage(raw, ids[1], GARBAGE)
    damage(raw, ids[3], NOT_A_RECORD)
    raw.zadd(QUEUE.ready, {b"no record behind this entry": 0})

    claimed = claim(backend, limit=10)

    assert sorted(t.id for t in claimed) == sorted([ids[0], ids[2], ids[4]])
    for task_id, raw_bytes, why in [(ids[1], GARBAGE, "Bad data format"),
                                    (ids[3], NOT_A_RECORD, "not a task record")]:
        dead = row(backend, task_id)
        assert (dead.state, dead.dead_reason) == ("DEAD", "decode_error")
        assert why in (dead.error or "") and dead.payload == raw_bytes, "nothing is lost"
        assert raw.zscore(QUEUE.dead, keys.encode_id(task_id)) is not None
    assert raw.zcard(QUEUE.ready) == 0, "the entry without a record is dropped"
    counts = backend.execute(QueueStatsRead())[0].counts
    assert counts["RUNNING"] == 3 and counts["DEAD"] == 2


def test_reads_answer_while_a_damaged_record_still_waits(
    backend: RedisBackend, raw: redis.Redis
) -> None:
    ids = enqueue(backend, new_task(), new_task())
    damage(raw, ids[0], GARBAGE)

    listed = {r.id: r for r in backend.execute(ListTasks())}
    assert listed[ids[0]].dead_reason == "decode_error" and listed[ids[1]].state == "PENDING"
    assert row(backend, ids[0]).payload == GARBAGE
    assert backend.execute(QueueStatsRead())[0].counts["PENDING"] == 2, "not buried by a read"


def test_damaged_due_and_leased_records_are_buried_too(
    backend: RedisBackend, raw: redis.Redis
) -> None:
    due, leased, good = enqueue(backend, new_task(delay=0.001), new_task(), new_task())
    damage(raw, due, GARBAGE)
    raw.zadd(QUEUE.scheduled, {b"gone": 0})
    damage(raw, leased, NOT_A_RECORD)
    raw.zrem(QUEUE.ready, keys.encode_id(leased))
    raw.zadd(QUEUE.leased, {keys.encode_id(leased): 1, b"also gone": 1})  # long expired

    recovered = backend.execute(RecoverExpired(max_worker_lost=3))
    assert (recovered.requeued, recovered.dead) == (0, 1)
    assert [t.id for t in claim(backend, limit=10)] == [good]

    for task_id in (due, leased):
        assert (row(backend, task_id).state, row(backend, task_id).dead_reason) == (
            "DEAD", "decode_error")
    assert raw.zcard(QUEUE.scheduled) == 0
    assert raw.zrange(QUEUE.leased, 0, -1) == [keys.encode_id(good)]
