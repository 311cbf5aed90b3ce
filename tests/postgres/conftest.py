"""Fixtures of the PostgreSQL-specific tests: a fresh schema per test on the session's private
database (see ``tests/postgres_server.py``), apps on it, and worker subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from conveyor import Conveyor
from postgres_server import fresh_url

TESTS_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture
def pg_url() -> str:
    return fresh_url()


@pytest.fixture
def pg_app(pg_url: str) -> Iterator[Conveyor]:
    application = Conveyor(pg_url, lease=5.0)
    yield application
    application.close()


@pytest.fixture
def conn(pg_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A plain connection of the application's own, as a web request would hold."""
    with psycopg.connect(pg_url) as connection:
        yield connection


@pytest.fixture
def effects_table(pg_url: str) -> str:
    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE effects (task_id text NOT NULL, n integer NOT NULL, "
            "attempt integer NOT NULL, pid integer NOT NULL)"
        )
    return pg_url


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``python -m conveyor worker apps.pg:app`` processes; all are killed at teardown.
    ``env`` adds variables (``CONVEYOR_CLOCK_SKEW`` shifts the process's clock)."""
    started: list[subprocess.Popen[bytes]] = []
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(SKEW_SHIM)

    def start(url: str, *args: str, lease: float = 1.0,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        environment = {**os.environ, "CONVEYOR_URL": url, "CONVEYOR_LEASE": str(lease),
                       "PYTHONPATH": f"{shim}{os.pathsep}{TESTS_DIR}", **(env or {})}
        with open(tmp_path / "workers.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "conveyor", "worker", "apps.pg:app", *args],
                env=environment, cwd=TESTS_DIR, stdout=log, stderr=log,
            )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


SKEW_SHIM = '''
"""Test shim: CONVEYOR_CLOCK_SKEW seconds added to this process's wall clock."""
import os
import time

_skew = float(os.environ.get("CONVEYOR_CLOCK_SKEW", "0") or 0)
if _skew:
    _time, _time_ns = time.time, time.time_ns
    time.time = lambda: _time() + _skew
    time.time_ns = lambda: _time_ns() + int(_skew * 1e9)
'''
