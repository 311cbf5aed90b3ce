"""`conveyor demo` as on a fresh checkout: no server, one subprocess, a story ending in the DLQ."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_runs_and_tells_what_happened(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    done = subprocess.run(
        [sys.executable, "-m", "conveyor", "demo", "--db", str(tmp_path / "demo.db")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Priority" in out and "priority-9" in out
    assert "after 3 attempts" in out
    assert "dead-letter queue" in out
    assert "ValueError: ledger for 2026-11-30 does not balance" in out
    assert "OLDEST PENDING" in out  # the closing stats table
    assert "Traceback" not in done.stderr
    assert (tmp_path / "demo.db").exists()
