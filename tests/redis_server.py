"""A private ``redis-server`` for tests: never the shared one on 6379.

One server per test session, started on first use on a free loopback port in a temporary
directory, and shut down when the session ends. Tests get a fresh store by flushing it.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import redis

from helpers import wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process; ``start``/``stop`` may be repeated (restart tests)."""

    def __init__(self, directory: Path, *extra: str, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.extra = list(extra)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory), *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, timeout=10.0, message=f"redis-server on port {self.port}")
        return self

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"redis-server on port {self.port} exited early")
        try:
            with redis.Redis(port=self.port, socket_timeout=1.0) as client:
                return bool(client.ping())
        except (redis.ConnectionError, redis.BusyLoadingError):
            return False

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)

    def pause(self) -> None:
        """SIGSTOP: the server stalls with its connections open (a stall, not a crash)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGCONT)
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None


_shared: RedisServer | None = None


def shared_server() -> RedisServer:
    """The session's private server (started on first use, stopped at exit)."""
    global _shared
    if _shared is None:
        directory = Path(tempfile.mkdtemp(prefix="conveyor-redis-"))
        _shared = RedisServer(directory).start()
        atexit.register(_stop_shared, directory)
    return _shared


def _stop_shared(directory: Path) -> None:
    if _shared is not None:
        _shared.stop()
    with contextlib.suppress(OSError):
        shutil.rmtree(directory)


def fresh_url() -> str:
    """The URL of an empty store on the shared private server."""
    server = shared_server()
    with server.client() as client:
        client.flushdb()
        client.script_flush()
    return server.url
