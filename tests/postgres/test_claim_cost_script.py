"""``benchmarks/postgres_claim_cost.py`` still runs against the current claim statements: it
binds their parameters itself (for its EXPLAIN), so a change to them can break it unseen. The
ninth session's one-statement claim did, until this test. A tiny backlog: this checks the
script, not the figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from postgres_server import ADMIN_URL

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "postgres_claim_cost.py"


def test_the_claim_cost_benchmark_runs_and_explains_the_claim() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--admin-url", ADMIN_URL, "--sizes", "300",
         "--rounds", "3"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "EXPLAIN of claim.sql, batch 256" in done.stdout
    assert "conveyor_tasks_ready" in done.stdout, done.stdout[-2000:]
