"""The reliability suite's tools: worker processes to kill, stop and restart, a TCP proxy of our
own to cut, slow down or black-hole a worker's broker connection, RSS sampling, the effect log,
the size knob and the figures file.

Sizes: every test names the full size of docs/RELIABILITY.md and scales it by
``CONVEYOR_CHAOS_SCALE`` (CI default 0.1; ``1`` is the documented full run). Figures are printed
and appended as JSON lines to ``$CONVEYOR_CHAOS_RESULTS`` (default
``tests/artifacts/reliability.jsonl``) so the docs can be filled from a real run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from helpers import wait_until

TESTS_DIR = Path(__file__).resolve().parents[1]
SCALE = float(os.environ.get("CONVEYOR_CHAOS_SCALE", "0.1"))
RESULTS = Path(os.environ.get("CONVEYOR_CHAOS_RESULTS",
                              TESTS_DIR / "artifacts" / "reliability.jsonl"))


def scaled(full: float, minimum: float) -> int:
    """``full`` at the configured scale, never below ``minimum``."""
    return int(max(minimum, round(full * SCALE)))


def report(test: str, backend: str, **figures: Any) -> None:
    """Print one figure line and append it to the results file."""
    line = {"test": test, "backend": backend, "scale": SCALE,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures}
    print("FIGURE", json.dumps(line))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- worker processes ------------------------------------------------------------------------------

_log_numbers = itertools.count(1)


class Workers:
    """Worker processes of ``apps.chaos:app`` (one ``conveyor worker`` each, no supervisor, so
    the test decides who dies and when), their logs in ``directory``."""

    def __init__(self, url: str, directory: Path, *, lease: float, concurrency: int = 8,
                 args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        self.url = url
        self.directory = directory
        self.lease = lease
        self.concurrency = concurrency
        self.args = args
        self.env = env or {}
        self.effects = directory / "effects.log"
        self.ledger = directory / "ledger.db"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.log_of: dict[int, Path] = {}
        self.started = 0

    def command(self) -> list[str]:
        return [sys.executable, "-m", "conveyor", "worker", "apps.chaos:app", "-q", "chaos",
                "--concurrency", str(self.concurrency), *self.args]

    def spawn(self, url: str | None = None) -> subprocess.Popen[bytes]:
        env = {**os.environ, "CONVEYOR_URL": url or self.url, "CONVEYOR_LEASE": str(self.lease),
               "CONVEYOR_EFFECTS": str(self.effects), "CONVEYOR_LEDGER": str(self.ledger),
               "PYTHONPATH": str(TESTS_DIR), **self.env}
        self.started += 1
        log = self.directory / f"worker-{next(_log_numbers)}.log"
        with log.open("ab") as out:
            # Its own process group: freezing "a worker" freezes its lease keeper and process
            # pool too, as a paused host or VM would.
            process = subprocess.Popen(self.command(), env=env, cwd=TESTS_DIR, stdout=out,
                                       stderr=out, start_new_session=True)
        self.log_of[process.pid] = log
        return process

    def ready(self, index: int) -> bool:
        """Whether worker ``index`` has started serving (its signal handlers are in place)."""
        log = self.log_of[self.processes[index].pid]
        return log.exists() and " started: " in log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> Workers:
        for index in range(len(self.processes)):
            wait_until(lambda i=index: self.ready(i), timeout=timeout,
                       interval=0.05, message=f"worker {index} did not start")
        return self

    def start(self, count: int) -> Workers:
        self.processes += [self.spawn() for _ in range(count)]
        return self

    def replace(self, index: int) -> subprocess.Popen[bytes]:
        self.processes[index] = self.spawn()
        return self.processes[index]

    def signal(self, index: int, signum: int) -> None:
        self.processes[index].send_signal(signum)

    def signal_group(self, index: int, signum: int) -> None:
        """Signal the worker with its helpers (lease keeper, pool processes)."""
        os.killpg(self.processes[index].pid, signum)

    def kill(self, index: int) -> None:
        process = self.processes[index]
        process.kill()
        process.wait(10)

    def respawn_dead(self) -> int:
        """Restart every worker that has exited (the job of a supervisor); returns how many."""
        dead = [i for i, p in enumerate(self.processes) if p.poll() is not None]
        for index in dead:
            self.replace(index)
        return len(dead)

    def crashed(self) -> list[int]:
        """Exit codes of workers that ended without being told to (a test kills on purpose)."""
        return [p.returncode for p in self.processes if p.poll() is not None]

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")
                         for p in sorted(self.directory.glob("worker-*.log")))

    def terminate_all(self, timeout: float = 60.0) -> list[int | None]:
        """SIGTERM every worker once it serves (before that, SIGTERM is a plain kill)."""
        self.wait_ready()
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.terminate()
        codes = []
        for process in self.processes:
            try:
                codes.append(process.wait(timeout))
            except subprocess.TimeoutExpired:
                self._dump_hung(process)
                process.kill()
                process.wait(10)
                codes.append(None)
        return codes

    def _dump_hung(self, process: subprocess.Popen[bytes]) -> None:
        """Print where a worker that ignored SIGTERM is stuck: its threads' stacks (the worker
        registers faulthandler on SIGUSR1) and the end of its log, for the test report."""
        log = self.log_of[process.pid]
        size = log.stat().st_size if log.exists() else 0
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGUSR1)
        with contextlib.suppress(AssertionError):  # the main thread's stack comes last
            wait_until(lambda: "Current thread" in log.read_bytes()[size:].decode(errors="replace"),
                       timeout=5)
        print(f"worker {process.pid} did not stop on SIGTERM; the end of its log:")
        print("\n".join(log.read_text(errors="replace").splitlines()[-150:]))

    def close(self) -> None:
        """Kill every worker still alive with its whole group (lease keeper, pool)."""
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            if process.poll() is None:
                process.wait(10)


def effect_lines(path: Path, kind: str = "effect") -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines()
            if line.startswith(kind + " ")]


def effect_counts(path: Path, kind: str = "effect") -> Counter[str]:
    """How many times each task id (or key) left an effect line of ``kind``."""
    return Counter(fields[1] for fields in effect_lines(path, kind))


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (Linux /proc)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (process-pool workers, lease keepers)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    with contextlib.suppress(OSError):
        return [int(x) for x in path.read_text().split()]
    return []


# -- a TCP proxy of our own ------------------------------------------------------------------------


class TcpProxy:
    """A loopback TCP proxy in its own thread, between workers and a broker.

    Modes: ``pass`` forwards; ``cut`` closes every connection and refuses new ones (a
    partition the peers notice); ``blackhole`` accepts and holds connections but forwards
    nothing (a partition nobody notices: only timeouts find it); ``latency`` forwards each
    chunk after ``delay_seconds``. ``refused`` counts the connections a cut turned away (each a
    client's try to reconnect).
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = "pass"
        self.delay_seconds = 0.0
        self.port = 0
        self.refused = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="chaos-proxy")

    def start(self) -> TcpProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("proxy did not start")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def set_mode(self, mode: str, delay_seconds: float = 0.0) -> None:
        assert mode in ("pass", "cut", "blackhole", "latency")

        def apply() -> None:
            self.mode, self.delay_seconds = mode, delay_seconds
            if mode == "cut":
                for writer in list(self._writers):
                    writer.transport.abort()
                self._writers.clear()

        self._loop.call_soon_threadsafe(apply)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "cut":
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer),
                             return_exceptions=True)
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            while self.mode == "blackhole":  # noqa: ASYNC110 - hold it: silence, not a close
                await asyncio.sleep(0.05)
            if self.mode == "cut" or writer.transport.is_closing():
                break
            if self.mode == "latency" and self.delay_seconds:
                await asyncio.sleep(self.delay_seconds)
            writer.write(data)
            await writer.drain()
        writer.transport.abort()

    def close(self) -> None:
        async def shutdown() -> None:
            for writer in list(self._writers):
                writer.transport.abort()
            if self._server is not None:
                self._server.close()
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()


# -- waiting ---------------------------------------------------------------------------------------


class Deadline:
    """Time left before a deadline, for loops that do work until then (not waits on a result)."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def __bool__(self) -> bool:
        return time.monotonic() < self.end


def all_tasks(app: Any, state: str) -> list[Any]:
    """Every task in ``state`` (paged reads)."""
    found: list[Any] = []
    while page := app.list_tasks(state=state, limit=1000, offset=len(found)):
        found += page
    return found
