"""Metrics kept in the backend: Enqueue counts itself, RecordMetrics adds per minute and to the
never-pruned totals, MetricsRead reads a window, Prune drops old minutes, RecoverExpired reports
expiries per queue; and real workers over a known task mix give exact counters on every
backend."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from backends.conftest import BackendKind
from backends.support import claim, enqueue, new_task
from conveyor import Conveyor, Retry, current_task
from conveyor.backends.base import (
    Backend,
    MetricCount,
    MetricsRead,
    Prune,
    RecordMetrics,
    RecoverExpired,
)
from conveyor.metrics.prometheus import exposition


def _read(backend: Backend, first: int, last: int) -> dict[tuple[str, int, str], float]:
    found: defaultdict[tuple[str, int, str], float] = defaultdict(float)
    for c in backend.execute(MetricsRead(first, last)):
        found[(c.queue, c.minute, c.name)] += c.value
    return dict(found)


def test_enqueue_counts_created_tasks_per_queue_and_minute(backend: Backend, clock) -> None:
    minute = int(clock.now // 60)
    enqueue(backend, new_task("a"), new_task("a", delay=30.0), new_task("b", key="k1"))
    enqueue(backend, new_task("b", key="k1"))  # the same key: nothing created, nothing counted
    clock.advance(60.0)
    enqueue(backend, new_task("a"))
    read = _read(backend, minute, minute + 1)
    assert read[("a", minute, "enqueued")] == 2
    assert read[("a", minute + 1, "enqueued")] == 1
    assert read[("a", 0, "enqueued")] == 3
    assert read[("b", minute, "enqueued")] == 1
    assert read[("b", 0, "enqueued")] == 1
    assert ("a", minute + 1, "enqueued") not in _read(backend, minute, minute)


def test_record_metrics_adds_to_the_minute_and_the_totals(backend: Backend, clock) -> None:
    """Queues are known from their first enqueue (workers only record for such queues)."""
    minute = int(clock.now // 60)
    enqueue(backend, new_task("a"), new_task("b"))
    backend.execute(RecordMetrics([
        MetricCount("a", minute, "succeeded", 3), MetricCount("a", minute, "wait_sum", 0.25),
        MetricCount("a", minute - 1, "succeeded", 2), MetricCount("b", minute, "dead", 1),
    ]))
    backend.execute(RecordMetrics([MetricCount("a", minute, "succeeded", 4)]))
    backend.execute(RecordMetrics([]))
    read = _read(backend, minute - 1, minute)
    assert read[("a", minute, "succeeded")] == 7
    assert read[("a", minute - 1, "succeeded")] == 2
    assert read[("a", 0, "succeeded")] == 9
    assert read[("a", minute, "wait_sum")] == pytest.approx(0.25)
    assert read[("b", 0, "dead")] == 1
    only_now = _read(backend, minute, minute)
    assert ("a", minute - 1, "succeeded") not in only_now
    assert only_now[("a", 0, "succeeded")] == 9  # totals whatever the window


def test_prune_drops_old_minutes_and_keeps_the_totals(
    backend: Backend, other_backend: Backend, clock
) -> None:
    minute = int(clock.now // 60)
    enqueue(backend, new_task("a"))
    backend.execute(RecordMetrics([MetricCount("a", minute, "succeeded", 1)]))
    clock.advance(2 * 3600.0)
    backend.execute(RecordMetrics([MetricCount("a", minute + 120, "succeeded", 1)]))
    other_backend.execute(Prune(metrics_retention_seconds=3600.0))
    read = _read(backend, minute, minute + 120)
    assert ("a", minute, "succeeded") not in read
    assert ("a", minute, "enqueued") not in read
    assert read[("a", minute + 120, "succeeded")] == 1
    assert read[("a", 0, "succeeded")] == 2
    assert read[("a", 0, "enqueued")] == 1


def test_recover_expired_reports_each_queue(backend: Backend, clock) -> None:
    enqueue(backend, new_task("a"), new_task("a"), new_task("b"))
    claim(backend, ["a", "b"], limit=3, lease=5.0)
    clock.advance(6.0)
    recovered = backend.execute(RecoverExpired(max_worker_lost=1))
    assert recovered.dead == 3
    assert recovered.per_queue == {"a": (0, 2), "b": (0, 1)}


# -- real workers ---------------------------------------------------------------------------------


def test_workers_count_a_known_mix_exactly(backend_kind: BackendKind, tmp_path: Path) -> None:
    """6 successes, 2 tasks that fail once then succeed, 2 that fail twice and die: exact
    counters, and latency percentiles that reflect the 50 ms tasks."""
    app = Conveyor(backend_kind.url(tmp_path), lease=10.0)

    @app.task(queue="mix")
    def ok() -> None:
        import time

        time.sleep(0.05)

    @app.task(queue="mix", retry=Retry.fixed(0.0))
    def flaky() -> None:
        if current_task().attempt == 1:
            raise RuntimeError("first try fails")

    @app.task(queue="mix", max_retries=1, retry=Retry.fixed(0.0))
    def doomed() -> None:
        raise RuntimeError("always")

    try:
        for _ in range(6):
            ok.enqueue()
        for _ in range(2):
            flaky.enqueue()
            doomed.enqueue()
        app.run_until_idle(["mix"], concurrency=4, timeout=60)
        stats = app.stats().queues["mix"]
        assert (stats.enqueued, stats.succeeded, stats.failed, stats.retried, stats.dead) == (
            10, 8, 6, 4, 2)
        assert stats.wait.count == 14  # every attempt started
        assert stats.latency.count == 8  # every success
        assert stats.latency.p99 is not None and 0.04 <= stats.latency.p99 <= 5.0
        assert stats.wait.p50 is not None and 0.0 <= stats.wait.p50 <= 5.0
        assert stats.count("DEAD") == 2 and stats.count("DONE") == 8
        assert sum(p.succeeded for p in stats.series) == 8
        assert stats.dead_per_minute > 0 and 0 < stats.error_rate < 1
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(exposition(app).decode())
            for s in family.samples
        }
        finished = "conveyor_tasks_finished_total"
        assert {status: samples[(finished, (("queue", "mix"), ("status", status)))]
                for status in ("succeeded", "failed", "retried", "dead", "expired")} == {
            "succeeded": 8, "failed": 6, "retried": 4, "dead": 2, "expired": 0}
        assert samples[("conveyor_tasks_enqueued_total", (("queue", "mix"),))] == 10
        assert samples[("conveyor_task_latency_seconds_count", (("queue", "mix"),))] == 8
        assert samples[("conveyor_tasks_started_total", (("queue", "mix"),))] == 14
        assert samples[("conveyor_task_duration_seconds_count", (("queue", "mix"),))] == 14
    finally:
        app.close()


def test_cancel_counts_cancelled_tasks_per_queue(backend: Backend, clock) -> None:
    from conveyor.backends.base import Cancel

    minute = int(clock.now // 60)
    a1, a2, b1 = enqueue(backend, new_task("a"), new_task("a", delay=60.0), new_task("b"))
    claim(backend, ["b"])
    assert sorted(backend.execute(Cancel([a1, a2, b1, "missing"]))) == sorted([a1, a2])
    read = _read(backend, minute, minute)
    assert read[("a", minute, "cancelled")] == 2 and read[("a", 0, "cancelled")] == 2
    assert ("b", 0, "cancelled") not in read


@pytest.mark.slow
def test_worker_processes_add_up_to_exact_cluster_wide_counts(
    backend_kind: BackendKind, tmp_path: Path
) -> None:
    """Two worker processes drain one queue together; each flushes its own counts, and the
    backend's figures are the exact sum, read by a third process."""
    import os
    import subprocess
    import sys

    if not backend_kind.shared_store:
        pytest.skip(f"{backend_kind.name}: other processes cannot reach this store")
    url = backend_kind.url(tmp_path)
    app = Conveyor(url)
    tests_dir = Path(__file__).resolve().parent.parent
    try:
        from apps.basic import add

        app.task(name=add.name, queue="default")(add.func).enqueue_many(
            [((n, n), {}) for n in range(300)])
        env = {**os.environ, "CONVEYOR_URL": url, "PYTHONPATH": str(tests_dir)}
        workers = [
            subprocess.Popen([sys.executable, "-m", "conveyor", "worker", "apps.basic:app",
                              "-q", "default", "--burst", "--concurrency", "8"],
                             env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
            for _ in range(2)
        ]
        assert [w.wait(120) for w in workers] == [0, 0]
        stats = app.stats().queues["default"]
        assert (stats.enqueued, stats.succeeded, stats.failed) == (300, 300, 0)
        assert stats.wait.count == 300 and stats.latency.count == 300
    finally:
        app.close()
