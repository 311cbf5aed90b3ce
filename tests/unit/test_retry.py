"""Retry policy: pure arithmetic of (attempt, error) -> seconds or None."""

from __future__ import annotations

import math

import pytest

from conveyor import Retry
from conveyor.retry import DEFAULT_RETRY, NO_RETRY


def test_exponential_growth_without_jitter() -> None:
    retry = Retry.exponential(base=1.0, factor=2.0, max_delay=1000.0, jitter=False)
    assert [retry.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]


def test_first_attempt_waits_base() -> None:
    retry = Retry.exponential(base=0.5, factor=3.0, max_delay=100.0, jitter=False)
    assert [retry.delay(n) for n in (0, 1, 2, 3)] == [0.5, 0.5, 1.5, 4.5]


def test_exponential_is_capped() -> None:
    retry = Retry.exponential(base=1.0, factor=2.0, max_delay=10.0, jitter=False)
    assert [retry.delay(n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    retry = Retry.exponential(base=1.0, factor=10.0, max_delay=60.0, jitter=False)
    assert retry.delay(10_000) == 60.0
    assert retry.delay(10**9) == 60.0


def test_full_jitter_draws_between_zero_and_the_capped_delay() -> None:
    retry = Retry.exponential(base=1.0, factor=2.0, max_delay=10.0, jitter=True)
    calls: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        calls.append((low, high))
        return high

    assert [retry.delay(n, uniform) for n in (1, 3, 9)] == [1.0, 4.0, 10.0]
    assert calls == [(0.0, 1.0), (0.0, 4.0), (0.0, 10.0)]
    assert retry.delay(3, lambda low, high: low) == 0.0


def test_jitter_with_the_real_generator_stays_in_bounds() -> None:
    retry = Retry.exponential(base=1.0, factor=2.0, max_delay=5.0, jitter=True)
    for attempt in range(1, 10):
        cap = min(5.0, 2.0 ** (attempt - 1))
        delays = [retry.delay(attempt) for _ in range(200)]
        assert all(0.0 <= d <= cap for d in delays)
        assert len(set(delays)) > 1


def test_fixed_delay() -> None:
    retry = Retry.fixed(3.0)
    assert [retry.delay(n) for n in range(1, 6)] == [3.0] * 5
    jittered = Retry.fixed(3.0, jitter=True)
    assert jittered.delay(7, lambda low, high: high) == 3.0


def test_on_filters_which_errors_retry() -> None:
    retry = Retry.exponential(on=(ConnectionError, TimeoutError))
    assert retry.retries(ConnectionResetError())
    assert retry.retries(TimeoutError())
    assert not retry.retries(ValueError())
    assert retry.next_delay(1, 5, ValueError()) is None
    assert retry.next_delay(1, 5, ConnectionError()) is not None


def test_on_accepts_a_single_type() -> None:
    retry = Retry.fixed(1.0, on=KeyError)
    assert retry.on == (KeyError,)
    assert retry.retries(KeyError("x"))
    assert not retry.retries(IndexError())


def test_default_retries_exceptions_but_not_base_exceptions() -> None:
    assert DEFAULT_RETRY.retries(RuntimeError())
    assert not DEFAULT_RETRY.retries(KeyboardInterrupt())
    assert not NO_RETRY.retries(RuntimeError())


def test_next_delay_stops_past_max_retries() -> None:
    retry = Retry.fixed(2.0)
    error = RuntimeError("x")
    assert [retry.next_delay(n, 3, error) for n in range(1, 6)] == [2.0, 2.0, 2.0, None, None]
    assert retry.next_delay(1, 0, error) is None


def test_next_delay_applies_backoff() -> None:
    retry = Retry.exponential(base=1.0, factor=2.0, max_delay=60.0, jitter=False)
    assert [retry.next_delay(n, 10, ValueError()) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    "kwargs", [{"base": -1.0}, {"factor": 0.5}, {"max_delay": -1.0}],
)
def test_exponential_refuses_bad_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"Retry\.exponential"):
        Retry.exponential(**kwargs)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_exponential_refuses_non_finite_parameters(bad: float) -> None:
    with pytest.raises(ValueError, match=r"Retry\.exponential"):
        Retry.exponential(base=bad)
    with pytest.raises(ValueError, match=r"Retry\.exponential"):
        Retry.exponential(max_delay=bad)


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_fixed_refuses_bad_delays(bad: float) -> None:
    with pytest.raises(ValueError, match=r"Retry\.fixed"):
        Retry.fixed(bad)
