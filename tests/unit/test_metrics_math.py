"""The metrics arithmetic above the backends: buckets, percentiles, windows, and backend-clock
attempt times that ignore the worker's own wall clock."""

from __future__ import annotations

import time

import pytest

from conveyor.backends.base import ClaimedTask, Completion, Failure
from conveyor.metrics.histogram import BOUNDS, BUCKETS, bucket_of, percentile
from conveyor.metrics.read import window_minutes
from conveyor.worker.metrics import MetricsRecorder, attempt_times


def test_bounds_are_the_1_2_5_series_from_a_millisecond_past_an_hour() -> None:
    assert BOUNDS[:4] == (0.001, 0.002, 0.005, 0.01)
    assert BOUNDS[-1] == 5000.0 and BOUNDS[-2] == 2000.0
    assert list(BOUNDS) == sorted(BOUNDS) and len(BOUNDS) + 1 == BUCKETS


def test_bucket_of_is_inclusive_of_its_upper_bound() -> None:
    assert bucket_of(0.0) == 0
    assert bucket_of(0.001) == 0
    assert bucket_of(0.0011) == 1
    assert bucket_of(1.0) == BOUNDS.index(1.0)
    assert bucket_of(10_000.0) == len(BOUNDS)


def test_percentiles_interpolate_inside_the_bucket() -> None:
    counts = [0] * BUCKETS
    assert percentile(counts, 0.5) is None
    counts[BOUNDS.index(0.1)] = 100  # 100 samples in (0.05, 0.1]
    assert percentile(counts, 0.5) == pytest.approx(0.075)
    assert percentile(counts, 0.99) == pytest.approx(0.0995)
    counts[BOUNDS.index(2.0)] = 1  # one slow outlier in (1, 2]
    assert percentile(counts, 0.5) == pytest.approx(0.05 + 0.05 * 50.5 / 100)
    assert percentile(counts, 1.0) == pytest.approx(2.0)
    only_huge = [0] * BUCKETS
    only_huge[-1] = 3
    assert percentile(only_huge, 0.5) == BOUNDS[-1]  # the open bucket: a floor


def test_window_minutes_cover_the_window_and_never_less_than_half_a_minute() -> None:
    assert window_minutes(6000.0 + 30.0, 300.0) == (96, 100)  # 270 s of 4.5 minutes
    assert window_minutes(6000.0 + 1.0, 300.0) == (96, 100)   # 241 s: whole minutes only
    assert window_minutes(6000.0 + 1.0, 10.0) == (99, 100)    # not 1 s of data
    assert window_minutes(6000.0 + 50.0, 10.0) == (100, 100)


def test_attempt_times_use_the_backend_claim_time_and_monotonic_offsets() -> None:
    wait, run, end = attempt_times(scheduled_at=1000.0, claimed_at=1002.0, claimed_mono=50.0,
                                   started_mono=50.5, ended_mono=51.75)
    assert (wait, run, end) == (2.5, 1.25, 1003.75)
    never_started = attempt_times(1000.0, 1002.0, 50.0, None, 51.0)
    assert never_started == (None, 0.0, 1003.0)


def _claimed(scheduled_at: float, lease_expires_at: float) -> ClaimedTask:
    return ClaimedTask("t1", "tests.noop", "q", b"", 5, 1, 3, 0, "tok", lease_expires_at,
                       scheduled_at, scheduled_at, None, None, 86400.0)


@pytest.mark.parametrize("skew", [-3600.0, 0.0, 7200.0])
def test_a_skewed_worker_clock_does_not_change_the_latencies(skew: float) -> None:
    """The backend's clock is ``skew`` seconds away from this process's wall clock; the task
    became due 2 s before the claim. The recorder never reads the wall clock, so the wait is
    2 s and the minute is the backend's, whatever the skew."""
    backend_now = time.time() + skew
    recorder = MetricsRecorder(lease_seconds=30.0)
    claimed = _claimed(scheduled_at=backend_now - 2.0, lease_expires_at=backend_now + 30.0)
    recorder.claimed([claimed])
    recorder.started(claimed)
    sample = recorder.sample(claimed, Completion(claimed.id, "tok", None))
    assert sample is not None
    assert sample.wait == pytest.approx(2.0, abs=0.5)
    assert sample.latency == pytest.approx(2.0, abs=0.5)
    assert sample.minute in (int(backend_now // 60), int(backend_now // 60) + 1)


def test_the_recorder_aggregates_outcomes_into_one_transition() -> None:
    recorder = MetricsRecorder(lease_seconds=30.0)
    now = time.time()
    for n, ending in enumerate([Completion("x", "tok", None), Failure("x", "tok", "e", 1.0),
                                Failure("x", "tok", "e", None, "max_retries")]):
        claimed = _claimed(now, now + 30.0)
        recorder.claimed([claimed])
        recorder.started(claimed)
        sample = recorder.sample(claimed, ending)
        assert sample is not None, n
        recorder.add(sample)
    op = recorder.take()
    assert op is not None and recorder.take() is None
    totals: dict[str, float] = {}
    for c in op.counts:
        totals[c.name] = totals.get(c.name, 0.0) + c.value
    assert {k: totals[k] for k in ("succeeded", "failed", "retried", "dead")} == {
        "succeeded": 1, "failed": 2, "retried": 1, "dead": 1}
    assert sum(v for k, v in totals.items() if k.startswith("wait_b")) == 3
    assert sum(v for k, v in totals.items() if k.startswith("latency_b")) == 1
    recorder.put_back(op)
    assert recorder.pending


def test_busy_meter_reports_the_time_average_since_the_last_heartbeat() -> None:
    from conveyor.worker.metrics import BusyMeter

    now = [100.0]
    meter = BusyMeter(clock=lambda: now[0])
    meter.set(4)
    now[0] += 1.0  # 4 busy for 1 s
    meter.set(0)
    now[0] += 3.0  # idle for 3 s
    assert meter.average() == 1  # 4 slot-seconds over 4 s
    meter.set(2)
    now[0] += 2.0
    assert meter.average() == 2
    assert meter.average() == 2  # no time passed: the current value
