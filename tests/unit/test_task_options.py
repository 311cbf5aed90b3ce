"""Enqueue options are validated before anything reaches the backend: a refused enqueue raises
a clear ``EnqueueError`` and writes nothing."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conveyor import (
    ConfigurationError,
    Conveyor,
    EnqueueError,
    InvalidOptionError,
    PayloadTooLarge,
    SerializationError,
    Task,
    TaskState,
    UnknownTaskError,
)


@pytest.fixture
def job(app: Conveyor) -> Task[..., Any]:
    @app.task(name="tests.job", queue="jobs")
    def job(*args: Any, **kwargs: Any) -> None: ...

    return job


def assert_nothing_written(app: Conveyor) -> None:
    assert app.list_tasks() == []
    stats = app.stats()
    assert stats.queues == {}
    assert sum(stats.total(state) for state in TaskState) == 0


def _refused(app: Conveyor, attempt: Callable[[], object], error: type[Exception]) -> None:
    with pytest.raises(error) as raised:
        attempt()
    assert isinstance(raised.value, EnqueueError)
    assert str(raised.value)
    assert_nothing_written(app)


def test_valid_options_write_the_task(app: Conveyor, job: Task[..., Any]) -> None:
    eta = datetime(2030, 1, 1, tzinfo=UTC)
    handle = job.options(priority=0, eta=eta, idempotency_key="k" * 255, max_retries=0,
                         timeout=2.5, queue="other").enqueue(1)
    info = handle.info()
    assert (info.priority, info.queue, info.max_retries, info.timeout) == (0, "other", 0, 2.5)
    assert info.scheduled_at == eta
    assert info.state == TaskState.SCHEDULED
    assert info.idempotency_key == "k" * 255


@pytest.mark.parametrize("priority", [0, 5, 9])
def test_priorities_0_to_9_are_accepted(job: Task[..., Any], priority: int) -> None:
    assert job.options(priority=priority).enqueue().info().priority == priority


@pytest.mark.parametrize(
    "priority", [-1, 10, 100, True, False, "5", 5.0, 5.5, math.nan], ids=repr,
)
def test_bad_priorities_are_refused(app: Conveyor, job: Task[..., Any], priority: Any) -> None:
    _refused(app, lambda: job.options(priority=priority).enqueue(), InvalidOptionError)


@pytest.mark.parametrize(
    "delay", [-1, -0.001, math.nan, math.inf, -math.inf, True, "10", [1]], ids=repr,
)
def test_bad_delays_are_refused(app: Conveyor, job: Task[..., Any], delay: Any) -> None:
    _refused(app, lambda: job.options(delay=delay).enqueue(), InvalidOptionError)


def test_delay_and_eta_together_are_refused(app: Conveyor, job: Task[..., Any]) -> None:
    eta = datetime.now(UTC) + timedelta(minutes=1)
    _refused(app, lambda: job.options(delay=5, eta=eta).enqueue(), InvalidOptionError)


@pytest.mark.parametrize("eta", [1_700_000_000, "2030-01-01", 1.5], ids=repr)
def test_eta_must_be_a_datetime(app: Conveyor, job: Task[..., Any], eta: Any) -> None:
    _refused(app, lambda: job.options(eta=eta).enqueue(), InvalidOptionError)


@pytest.mark.parametrize("key", ["", "k" * 256, 42, b"bytes", ["k"]], ids=repr)
def test_bad_idempotency_keys_are_refused(app: Conveyor, job: Task[..., Any], key: Any) -> None:
    _refused(app, lambda: job.options(idempotency_key=key).enqueue(), InvalidOptionError)


def test_one_key_cannot_cover_a_batch(app: Conveyor, job: Task[..., Any]) -> None:
    bound = job.options(idempotency_key="batch")
    _refused(app, lambda: bound.enqueue_many([((1,), {}), ((2,), {})]), InvalidOptionError)


@pytest.mark.parametrize(
    ("option", "value"),
    [("max_retries", -1), ("max_retries", 1.5), ("max_retries", True), ("timeout", 0),
     ("timeout", -1), ("timeout", math.nan), ("result_ttl", -1), ("queue", ""),
     ("queue", "q" * 201)],
)
def test_other_bad_options_are_refused(
    app: Conveyor, job: Task[..., Any], option: str, value: Any
) -> None:
    _refused(app, lambda: job.options(**{option: value}).enqueue(), InvalidOptionError)


def test_unknown_task_name_is_refused(app: Conveyor, job: Task[..., Any]) -> None:
    _refused(app, lambda: app.enqueue("tests.nope", (1,)), UnknownTaskError)
    with pytest.raises(UnknownTaskError, match=r"tests\.job"):
        app.enqueue("tests.nope")


def test_enqueue_by_name_applies_options(app: Conveyor, job: Task[..., Any]) -> None:
    handle = app.enqueue("tests.job", (1, 2), {"k": "v"}, priority=8)
    info = handle.info()
    assert (info.args, info.kwargs, info.priority) == ((1, 2), {"k": "v"}, 8)


def test_enqueue_by_name_with_bad_options_writes_nothing(
    app: Conveyor, job: Task[..., Any]
) -> None:
    _refused(app, lambda: app.enqueue("tests.job", (), priority=10), InvalidOptionError)


def test_unserializable_arguments_are_refused(app: Conveyor, job: Task[..., Any]) -> None:
    _refused(app, lambda: job.enqueue(object()), SerializationError)
    _refused(app, lambda: job.enqueue(key=lambda: None), SerializationError)


def test_non_string_keyword_names_are_refused(app: Conveyor, job: Task[..., Any]) -> None:
    _refused(app, lambda: job.enqueue_many([((), {1: "x"})]), SerializationError)


def test_oversized_payload_is_refused() -> None:
    small = Conveyor("sqlite://:memory:", max_payload_bytes=100)
    try:
        @small.task(name="tests.big")
        def big(blob: str) -> None: ...

        big.enqueue("x" * 50)
        with pytest.raises(PayloadTooLarge):
            big.enqueue("x" * 200)
        assert len(small.list_tasks()) == 1
    finally:
        small.close()


@pytest.mark.parametrize(
    "calls", [[(1, 2, 3)], [((1,),)], ["ab"], [((1,), [])], [({"a": 1}, {})], [(1, {})]],
    ids=repr,
)
def test_malformed_enqueue_many_items_are_refused(
    app: Conveyor, job: Task[..., Any], calls: Any
) -> None:
    _refused(app, lambda: job.enqueue_many(calls), InvalidOptionError)


def test_a_bad_item_anywhere_in_a_batch_writes_nothing(app: Conveyor, job: Task[..., Any]) -> None:
    calls: list[Any] = [((n,), {}) for n in range(10)]
    calls[7] = ((object(),), {})
    _refused(app, lambda: job.enqueue_many(calls), SerializationError)


def test_async_enqueue_validates_the_same(app: Conveyor, job: Task[..., Any]) -> None:
    _refused(app, lambda: asyncio.run(job.aenqueue(object())), SerializationError)
    _refused(
        app, lambda: asyncio.run(job.options(priority=42).aenqueue()), InvalidOptionError
    )


def test_bad_defaults_are_refused_at_declaration(app: Conveyor) -> None:
    with pytest.raises(InvalidOptionError):
        @app.task(priority=10)
        def urgent() -> None: ...

    with pytest.raises(ConfigurationError):
        @app.task(executor="fiber")  # type: ignore[call-overload]
        def odd() -> None: ...

    assert app.tasks == {}


def test_options_none_keeps_the_default(job: Task[..., Any]) -> None:
    bound = job.options(priority=None, delay=None)
    assert bound.opts == job.defaults


def test_zero_values_are_kept(job: Task[..., Any]) -> None:
    bound = job.options(priority=0, delay=0, max_retries=0)
    assert (bound.opts.priority, bound.opts.delay, bound.opts.max_retries) == (0, 0, 0)
    assert bound.enqueue().info().state == TaskState.PENDING


def test_naive_eta_is_taken_as_utc(job: Task[..., Any]) -> None:
    naive = datetime(2031, 2, 3, 4, 5, 6)
    info = job.options(eta=naive).enqueue().info()
    assert info.scheduled_at == naive.replace(tzinfo=UTC)
