"""Heartbeats from a small companion process, out of reach of the tasks.

A sync task that holds the GIL in C code (a regex gone exponential, a huge integer power) stops
every thread of its process, the event loop included, for as long as it runs. If the loop sent
the heartbeats, the task's lease would lapse and another worker would run it a second time. So
the worker hands its current set of leases to this process, which extends them every interval
whatever the worker is doing. It keeps extending the last set it was given: when the worker is
blocked, that is exactly the set of tasks still running. When the worker dies, its end of the
pipe closes and the keeper exits at once, so leases lapse and recovery works as designed.
When the worker hangs without dying (stopped alone, deadlocked outside the GIL), the keeper
notices: no beat from the worker's loop for a whole lease while none of its threads is running
(Linux ``/proc``); it then stops extending until the worker speaks again, so those tasks are
recovered like a dead worker's. A task holding the GIL keeps its thread running, so that case
is still covered.

Messages are msgpack, never pickle. To the keeper: ``["set", [[id, token, queue], ...]]`` (the
whole set, at every heartbeat of the worker's loop); ``["add", [...]]`` (the leases of one claim,
sent at once, so a task that blocks the loop right after its claim is covered; sending the whole
set per claim cost a busy worker a tenth of its loop); ``["beat", []]`` (from the event loop
itself, twice per interval and never behind a backend call, so a worker waiting on a slow store
is not taken for a hung one). Back: ``["ready"]`` once its backend is open (until then the
worker's loop extends the leases itself, so the keeper's start-up is no gap) and
``["lost", [[id, token], ...]]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec

from conveyor.backends.base import ClaimedTask, Extend, Lease
from conveyor.worker.pipe import Pipe

log = logging.getLogger("conveyor.worker")
_encoder = msgspec.msgpack.Encoder()


def can_run_apart(url: str, options: dict[str, Any]) -> bool:
    """Another process can reach the store (not ``:memory:``) and rebuild the backend from
    plain options (a test clock, say, cannot cross a process boundary)."""
    if ":memory:" in url:
        return False
    try:
        json.dumps(options)
    except (TypeError, ValueError):
        return False
    return True


class LeaseKeeper:
    """The worker's side. The keeper is forked when this process has a single thread (the
    worker creates it before anything starts one): a fresh interpreter importing a backend
    costs about 0.2 s of CPU, which beside a worker draining at full speed on two cores was a
    sixth of the throughput. Otherwise (threads already running, where a fork may copy a lock
    some other thread held) it is a fresh interpreter; not multiprocessing, whose spawned
    child re-imports the parent's ``__main__`` (a user's script without a main guard would
    start again)."""

    def __init__(self, url: str, options: dict[str, Any], worker_id: str,
                 lease_seconds: float, interval_seconds: float) -> None:
        parent_end, child_end = socket.socketpair()
        config = [url, options, worker_id, lease_seconds, interval_seconds]
        self.process: subprocess.Popen[bytes] | Forked
        if (hasattr(os, "fork") and threading.active_count() == 1
                and threading.current_thread() is threading.main_thread()):
            self.process = _fork(parent_end, child_end, config)
        else:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "import conveyor.worker.lease_keeper as k; k.main()",
                 str(child_end.fileno()), json.dumps(config)],
                pass_fds=[child_end.fileno()], stdin=subprocess.DEVNULL,
            )
        child_end.close()
        self._pipe = Pipe(parent_end)
        self._writing = False
        self._gone = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._beat_every = interval_seconds / 2
        self._beat: asyncio.TimerHandle | None = None
        self.ready = False

    def listen(self, on_lost: Callable[[list[tuple[str, str]]], None]) -> None:
        """Deliver lost leases to ``on_lost`` on the running loop."""
        loop = self._loop = asyncio.get_running_loop()

        def readable() -> None:
            try:
                for data in self._pipe.receive():
                    message = msgspec.msgpack.decode(data)
                    if message[0] == "ready":
                        self.ready = True
                    else:
                        on_lost([(i, t) for i, t in message[1]])
            except (EOFError, OSError):
                self.ready = False
                loop.remove_reader(self._pipe.fileno())
                log.warning("lease keeper exited; heartbeats continue from the event loop")

        loop.add_reader(self._pipe.fileno(), readable)
        self._send_beat()

    def _send_beat(self) -> None:
        self._send("beat", [])
        if self._loop is not None:
            self._beat = self._loop.call_later(self._beat_every, self._send_beat)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    @property
    def alive(self) -> bool:
        """Ready and running: only then may the worker leave the extending to it."""
        return self.ready and self.running

    def update(self, leases: list[Lease]) -> None:
        """The whole current set: what the keeper extends from now on."""
        self._send("set", [[x.id, x.lease_token, x.queue] for x in leases])

    def add(self, claimed: list[ClaimedTask]) -> None:
        """New leases, on top of the last set. A lease that ends meanwhile stays in the keeper's
        set until the next ``update``; extending it reports it lost, which the worker ignores
        for tasks it no longer holds."""
        self._send("add", [[x.id, x.lease_token, x.queue] for x in claimed])

    def _send(self, kind: str, leases: list[list[str | None]]) -> None:
        """Never blocks (see :mod:`pipe`): what the keeper cannot take now goes out when the
        socket is writable again."""
        if not self._gone:
            self._pipe.put(_encoder.encode([kind, leases]), supersedes=kind == "set")
            self._flush()

    def _flush(self) -> None:
        """Write what the socket takes; the loop writes the rest once it is writable."""
        try:
            self._pipe.flush()
        except OSError:  # the keeper is gone: the loop's own heartbeat takes over (``alive``)
            self._gone = True
            self._stop_writing()
            return
        if self._pipe.pending and not self._writing and self._loop is not None:
            self._loop.add_writer(self._pipe.fileno(), self._flush)
            self._writing = True
        elif not self._pipe.pending:
            self._stop_writing()

    def _stop_writing(self) -> None:
        if self._writing and self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_writer(self._pipe.fileno())
        self._writing = False

    def close(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
        if self._loop is not None:
            self._stop_writing()
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self._pipe.fileno())
        self._pipe.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def main() -> None:
    """The keeper's entry point: ``python -c ... <fd> <json config>`` (see ``LeaseKeeper``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when we stop
    _run(Pipe(socket.socket(fileno=int(sys.argv[1]))), json.loads(sys.argv[2]))


def _run(conn: Pipe, config: list[Any]) -> None:
    url, options, worker_id, lease_seconds, interval_seconds = config
    try:
        _serve(conn, url, options, worker_id, lease_seconds, interval_seconds)
    except (EOFError, OSError):
        pass  # the worker is gone (stopped, or killed): its leases lapse as designed
    except Exception as exc:  # the loop heartbeats on when we are gone; say why, once
        log.warning("lease keeper stopped: %s", exc)


def _fork(parent_end: socket.socket, child_end: socket.socket, config: list[Any]) -> Forked:
    pid = os.fork()
    if pid:
        return Forked(pid)
    # The child. It owns nothing of the worker's: it never returns into the worker's code,
    # never finalizes the worker's objects (an inherited database connection closed here
    # would end the worker's session too: gc.freeze keeps the collector off them), and leaves
    # through os._exit, running no atexit handler of the worker's.
    code = 0
    try:
        gc.freeze()
        signal.set_wakeup_fd(-1)  # the worker's loop reads signal numbers from that pipe
        for signum in (signal.SIGTERM, signal.SIGUSR1):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when we stop
        parent_end.close()
        _run(Pipe(child_end), config)
    except BaseException:  # nothing may propagate into the worker's frames
        code = 1
    finally:
        os._exit(code)


class Forked:
    """A forked keeper behind the part of ``subprocess.Popen`` the worker uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else: gone all the same
                self.returncode = -1
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while (code := self.poll()) is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("lease keeper", timeout)
            time.sleep(0.005)
        return code

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


def _serve(conn: Pipe, url: str, options: dict[str, Any], worker_id: str,
           lease_seconds: float, interval_seconds: float) -> None:
    from conveyor.backends import open_backend

    parent = os.getppid()
    backend = open_backend(url, **options)
    try:
        conn.send(_encoder.encode(["ready"]))
        # id -> (token, queue): Lease objects are built only when extending. A busy worker
        # sends a batch per claim (dozens a second), and building them per message, or copying
        # the whole set after each, made the keeper an eighth of the worker's CPU in a drain.
        held: dict[str, tuple[str, str | None]] = {}
        next_tick = time.monotonic() + interval_seconds
        last_word = time.monotonic()
        hung = False
        while os.getppid() == parent:
            readable, writable, _ = select.select(
                [conn], [conn] if conn.pending else [], [],
                max(0.0, next_tick - time.monotonic()))
            if writable:
                conn.flush()
            if readable:
                last_word = time.monotonic()
                if hung:
                    hung = False
                    log.warning("lease keeper: worker %s is responsive again", parent)
                for data in conn.receive():
                    kind, given = msgspec.msgpack.decode(data)
                    if kind == "set":
                        held = {}
                    held.update((i, (t, q)) for i, t, q in given)
            if time.monotonic() < next_tick:
                continue
            next_tick = time.monotonic() + interval_seconds
            if not held:
                continue
            leases = [Lease(i, t, q) for i, (t, q) in held.items()]
            if time.monotonic() - last_word > lease_seconds and not _any_thread_running(parent):
                if not hung:
                    hung = True
                    log.warning("lease keeper: worker %s has been silent for %.1fs and none of "
                                "its threads is running; no longer extending its %d lease(s)",
                                parent, time.monotonic() - last_word, len(leases))
                continue
            try:
                lost = set(backend.execute(Extend(worker_id, leases, lease_seconds)))
            except Exception as exc:
                log.warning("lease keeper: extending %d lease(s) failed: %s", len(leases), exc)
                continue
            if lost:
                conn.send(_encoder.encode(
                    ["lost", [[x.id, x.lease_token] for x in leases if x.id in lost]]
                ))
                for task_id in lost:
                    held.pop(task_id, None)
    finally:
        backend.close()


def _any_thread_running(pid: int) -> bool:
    """Whether a thread of ``pid`` is running or runnable (state ``R``), from ``/proc``; True
    where that cannot be read, so without ``/proc`` the keeper extends as before."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue  # the thread ended meanwhile
        if stat[stat.rfind(")") + 2:][:1] == "R":
            return True
    return False
