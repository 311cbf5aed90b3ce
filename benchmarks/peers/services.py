"""Private services and virtualenvs for a peer run: nothing shared is ever touched.

- Redis: a ``redis-server`` of our own on a free loopback port, no persistence, in a temporary
  directory; flushed before every workload run and shut down at the end.
- PostgreSQL: the local server at 127.0.0.1:5432 (user postgres, trust auth), but only
  databases this run creates under a random name; each is dropped after its workload run.
- Virtualenvs: one per peer under ``benchmarks/peers/.venv/<peer>``, because peers pin
  conflicting versions of the same client libraries (redis, anyio, pydantic...).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENVS = HERE / ".venv"
STAMP = "peerbench-requirements.txt"


class ServiceError(RuntimeError):
    """A private service could not be started or prepared."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A private, non-persistent redis-server on a free loopback port."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
            raise ServiceError("redis-server / redis-cli not found on PATH")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="peerbench-redis-"))
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while self.cli("PING") != "PONG":
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise ServiceError(f"private redis-server on port {self.port} did not start")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def version(self) -> str:
        info = self.cli("INFO", "server")
        for line in info.splitlines():
            if line.startswith("redis_version:"):
                return line.split(":", 1)[1].strip()
        return "?"

    def cli(self, *args: str) -> str:
        try:
            done = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args],
                                  capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired:
            return ""
        return done.stdout.strip()

    def flush(self) -> None:
        if self.cli("FLUSHALL") != "OK":
            raise ServiceError("FLUSHALL on the private redis-server failed")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresServer:
    """Creates and drops throw-away databases on the local server; touches no other."""

    def __init__(self, host: str = "127.0.0.1", port: int = 5432, user: str = "postgres"
                 ) -> None:
        if shutil.which("psql") is None:
            raise ServiceError("psql not found on PATH")
        self.host, self.port, self.user = host, port, user
        self.created: set[str] = set()
        self.version = self.sql("SHOW server_version").strip()
        if not self.version:
            raise ServiceError(f"PostgreSQL at {host}:{port} is not reachable as {user}")

    def sql(self, statement: str) -> str:
        try:
            done = subprocess.run(
                ["psql", "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", "postgres",
                 "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", statement],
                capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired as exc:
            raise ServiceError(f"psql timed out: {statement}") from exc
        if done.returncode != 0:
            raise ServiceError(f"psql failed ({statement}): {done.stderr.strip()}")
        return done.stdout

    def create(self) -> str:
        """A fresh database with a random name; returns its URL."""
        name = f"peerbench_{secrets.token_hex(6)}"
        self.sql(f"CREATE DATABASE {name}")
        self.created.add(name)
        return f"postgresql://{self.user}@{self.host}:{self.port}/{name}"

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        if name in self.created:  # only ever a database this run created
            self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            self.created.discard(name)

    def stop(self) -> None:
        for name in list(self.created):
            try:
                self.drop(f"/{name}")
            except ServiceError as exc:
                print(f"could not drop {name}: {exc}", file=sys.stderr)


def ensure_venv(name: str, requirements: tuple[str, ...], log: Callable[[str], None] = print,
                timeout: float = 900.0) -> Path:
    """The peer's private virtualenv, created and installed if its requirements changed.

    Returns its python. Raises ServiceError with the tail of pip's output on failure.
    """
    venv = VENVS / name
    python = venv / "bin" / "python"
    wanted = "\n".join(requirements) + "\n"
    stamp = venv / STAMP
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    log(f"installing {name} ({' '.join(requirements)}) into {venv.relative_to(HERE.parent.parent)}")
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                           capture_output=True, timeout=300)
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
             *requirements], capture_output=True, text=True, timeout=timeout)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise ServiceError(f"creating the virtualenv for {name} failed: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
        raise ServiceError(f"pip install for {name} failed:\n{tail}")
    stamp.write_text(wanted)
    return python


def kill_listed(pids_file: Path) -> None:
    """Kill the process groups of workers an agent started (after a hard timeout)."""
    if not pids_file.exists():
        return
    for line in pids_file.read_text().split():
        with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
            os.killpg(int(line), signal.SIGKILL)
