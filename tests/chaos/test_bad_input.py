"""Bad input: malformed messages written straight into each backend among good ones, tasks whose
results or exceptions cannot travel, oversized payloads, and a fuzzer on the CLI's JSON inputs.

The messages go in through the backend's own ``Enqueue`` transition with hand-made payload bytes,
so nothing of the producer's validation stands in the way: what the worker then claims is exactly
what an old version, a hand-written script or a corruption would have left there.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.harness import Workers, effect_counts, report, scaled
from conveyor import Conveyor, TaskState
from conveyor.backends.base import Enqueue, NewTask
from conveyor.cli.main import cli
from conveyor.errors import PayloadTooLarge, SerializationError
from conveyor.ids import new_task_id
from helpers import wait_until

pytestmark = pytest.mark.slow
_pack = msgspec.msgpack.encode

MALFORMED: dict[str, tuple[bytes, str]] = {
    # kind: (payload bytes, the DLQ reason it must get)
    "garbage": (b"\xc1\xff\x00garbage", "decode_error"),
    "empty": (b"", "decode_error"),
    "truncated": (_pack([["a", 1.5], {"k": "v"}])[:-3], "decode_error"),
    "not_an_array": (_pack(42), "decode_error"),
    "wrong_arity": (_pack([["a"], {}, "extra"]), "decode_error"),
    "args_not_array": (_pack(["abc", {}]), "decode_error"),
    "kwargs_not_map": (_pack([[], ["x"]]), "decode_error"),
    "kwargs_int_keys": (_pack([[], {1: 2}]), "decode_error"),
    "bad_utf8": (b"\x92\x91\xa2\xff\xfe\x80", "decode_error"),
    "json_not_msgpack": (b'[["a"], {}]', "decode_error"),
    "length_lies": (b"\x92\xdb\xff\xff\xff\xff" + b"abc", "decode_error"),
    "ext_type": (b"\x92\x91\xd4\x05\x00\x80", "decode_error"),
    "unknown_task": (_pack([[], {}]), "unknown_task"),
}


def raw(name: str, payload: bytes) -> NewTask:
    return NewTask(id=new_task_id(), name=name, queue="chaos", payload=payload, priority=5,
                   max_retries=3)


def test_malformed_messages_go_to_the_dlq_and_good_ones_run(
    backend: str, url: str, app: Conveyor, workers: Callable[..., Workers]
) -> None:
    from apps import chaos

    per_kind, good = scaled(100, 10), scaled(10_000, 1_000)
    expected: dict[str, str] = {}
    for kind, (payload, reason) in MALFORMED.items():
        name = "apps.chaos.no_such_task" if kind == "unknown_task" else chaos.effect.name
        batch = [raw(name, payload) for _ in range(per_kind)]
        app.backend.execute(Enqueue(batch))
        expected.update({t.id: reason for t in batch})
    goods = []
    for start in range(0, good, 500):  # good work interleaved after the bad in every batch
        goods += chaos.effect.enqueue_many(
            [((f"g{n}", 0.0), {}) for n in range(start, min(good, start + 500))])
    group = workers(url, lease=5.0).start(2)
    total = good + len(expected)
    wait_until(lambda: sum(app.stats().queues["chaos"].counts.get(s, 0)
                           for s in ("DONE", "DEAD")) == total,
               timeout=60 + total / 50, interval=0.3, message="not every message settled")
    dead = {}
    offset = 0
    while page := app.list_tasks(state=TaskState.DEAD, limit=500, offset=offset):
        dead.update({t.id: t for t in page})
        offset += len(page)
    counts = app.stats().queues["chaos"].counts
    wrong = {i: (dead[i].dead_reason if i in dead else None) for i, r in expected.items()
             if i not in dead or dead[i].dead_reason != r}
    report("bad_input", backend, kinds=len(MALFORMED), per_kind=per_kind, good=good,
           good_done=counts.get("DONE", 0), dlq=len(dead), wrong_reason_or_missing=len(wrong),
           retried=sum(1 for t in dead.values() if t.attempts != 1),
           worker_restarts=len(group.crashed()))
    assert group.crashed() == [], "no worker died"
    assert counts == {"DONE": good, "DEAD": len(expected)}, "0 silently dropped"
    assert set(effect_counts(group.effects)) == {h.id for h in goods}
    assert wrong == {}, "every bad message is in the DLQ with the right reason"
    assert all(t.attempts == 1 for t in dead.values()), "rejected at once, never retried"
    assert all(t.payload_error or t.error for t in dead.values()), "with the decode error"
    assert group.terminate_all() == [0, 0]


def test_unserializable_results_and_exceptions_reach_the_dlq(
    backend: str, url: str, app: Conveyor, workers: Callable[..., Workers]
) -> None:
    from apps import chaos

    result = chaos.unserializable_result.enqueue()
    unpicklable = chaos.raise_unserializable.enqueue()
    huge = chaos.raise_huge.enqueue(5_000_000)
    after = chaos.effect.enqueue("after", 0.0)
    group = workers(url, lease=5.0).start(1)
    handles = [result, unpicklable, huge, after]
    wait_until(lambda: all(h.info().state in (TaskState.DONE, TaskState.DEAD) for h in handles),
               timeout=60, message="the bad tasks did not settle")
    infos = [h.info() for h in handles]
    report("bad_results", backend, unserializable_result=infos[0].dead_reason,
           unserializable_exception=infos[1].dead_reason, huge_exception=infos[2].dead_reason,
           huge_error_chars=len(infos[2].error or ""), worker_restarts=len(group.crashed()))
    assert infos[0].state == TaskState.DEAD and infos[0].dead_reason == "not_retryable"
    assert "serialized" in (infos[0].error or "")
    assert infos[1].state == TaskState.DEAD and "Unpicklable" in (infos[1].error or "")
    assert infos[2].state == TaskState.DEAD and len(infos[2].error or "") < 100_000, "cut"
    assert infos[3].state == TaskState.DONE
    assert group.crashed() == []
    assert group.terminate_all() == [0]


def test_oversized_and_unserializable_payloads_are_refused_at_enqueue(
    backend: str, url: str, app: Conveyor
) -> None:
    from apps import chaos

    with pytest.raises(PayloadTooLarge):
        chaos.effect.enqueue("x" * (app.max_payload_bytes + 1))
    with pytest.raises(SerializationError):
        chaos.effect.enqueue(object())
    with pytest.raises(SerializationError):
        chaos.effect.enqueue_many([(("ok",), {}), ((object(),), {})])
    assert app.stats().queues.get("chaos") is None or app.stats().total("PENDING") == 0, \
        "nothing written"


_json_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=string.printable, max_size=60),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
                 | st.text(max_size=8),
                 lambda inner: st.lists(inner, max_size=4)
                 | st.dictionaries(st.text(max_size=4), inner, max_size=4),
                 max_leaves=12).map(lambda v: msgspec.json.encode(v).decode()),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(args=_json_text, kwargs=_json_text, name=st.sampled_from(
    ["apps.chaos.effect", "apps.chaos.due_at", "nope", ""]))
def test_cli_enqueue_fuzz_never_crashes(tmp_path: Path, args: str, kwargs: str,
                                        name: str) -> None:
    """Whatever JSON (or not) is given, `conveyor enqueue` answers with an exit code and a
    message, never a traceback: 0, 1 (refused by the app) or 2 (usage)."""
    url = f"sqlite:///{tmp_path / 'fuzz.db'}"
    result = CliRunner().invoke(
        cli, ["--app", "apps.chaos:app", "--url", url, "enqueue", name, "--args", args,
              "--kwargs", kwargs], env={"PYTHONPATH": str(Path(__file__).parents[1])})
    assert result.exit_code in (0, 1, 2), (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
