"""``conveyor bench`` runs every BENCHMARKS.md workload end to end (figures are not checked here:
timing belongs to benchmarks, not tests; what is checked is that each workload ran every task
exactly once and reported its fields)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_runs_every_workload_on_sqlite() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", "bench", "-n", "200", "--repeats", "1", "--json"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["store"] == "SQLite"
    for key in ("baseline_enqueue", "baseline_drain", "enqueue", "drain_1", "drain_2", "e2e_2"):
        assert report["figures"][key] and all(rate > 0 for rate in report["figures"][key])
    assert set(report["latency_ms"]) == {"p50", "p95", "p99", "max"}
    priority = report["priority_ms"]
    assert 0 < priority["p50"] <= priority["max"]
    # A figure, not a verdict: on a loaded machine SQLite's busy handler can keep the producer
    # of the priority-9 tasks waiting for the write lock while the workers drain the lows.
    assert priority["lows_before_first"] <= priority["lows_before_last"] <= 10_000
    delayed = report["delayed_ms"]
    assert delayed["early"] == 0 and delayed["p50"] >= 0
