"""N worker processes under one parent: ``conveyor worker ... --processes N``.

Children are fresh interpreters (``python -m conveyor worker ... --processes 1``), not forks, so
no lock, thread or connection of the parent leaks into them. Each lives in its own process
group: a terminal's Ctrl-C reaches only the supervisor, which forwards exactly one signal per
signal it receives. (With a shared group every child would see Ctrl-C twice, once from the
terminal and once forwarded, and turn a warm stop into a cold one.) Because of that a child also
watches its parent (``CONVEYOR_SUPERVISOR_PID``) and stops on its own if the supervisor dies
without passing the signal on.

Restart policy: a child that exits while nobody asked it to is restarted after a backoff that
doubles with each quick death (``backoff`` .. ``max_backoff``) and resets once a child stayed up
``stable_after`` seconds, so a crash loop costs little CPU and a rare crash restarts at once.
Exit code 2 (usage, import or config error) is not restarted: it would fail the same way again.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import FrameType

log = logging.getLogger("conveyor.supervisor")

SUPERVISOR_PID_ENV = "CONVEYOR_SUPERVISOR_PID"
EXIT_USAGE = 2
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass
class _Child:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = None
    finished: bool = False
    """Burst mode: exited 0 because no task was left; not to be restarted."""
    exit_code: int | None = None


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


class Supervisor:
    """Keeps ``processes`` copies of ``command`` running until a signal (or, with ``burst``,
    until every copy exited 0). ``run()`` returns the exit code for the CLI."""

    def __init__(
        self,
        command: Sequence[str],
        processes: int,
        *,
        burst: bool = False,
        stop_timeout: float = 40.0,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        stable_after: float = 10.0,
        env: Mapping[str, str] | None = None,
        poll_interval: float = 0.05,
    ) -> None:
        if processes < 1:
            raise ValueError("processes must be >= 1")
        self.command = list(command)
        self.burst = burst
        self.stop_timeout = stop_timeout
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stable_after = stable_after
        self.poll_interval = poll_interval
        self.env = {**(env if env is not None else os.environ),
                    SUPERVISOR_PID_ENV: str(os.getpid())}
        self.children = [_Child(index) for index in range(1, processes + 1)]
        self._signals: list[int] = []
        self._stop_deadline: float | None = None
        self._fatal = False
        self._forced = False

    # -- control ---------------------------------------------------------------------------------

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        """Ask for a stop as a signal would (safe from a signal handler: it only appends)."""
        self._signals.append(signum)

    def pids(self) -> list[int]:
        return [c.proc.pid for c in self.children if c.proc is not None]

    def run(self) -> int:
        previous = self._install_signal_handlers()
        try:
            for child in self.children:
                self._spawn(child, restart=False)
            while not self._finished():
                self._handle_signals()
                now = time.monotonic()
                for child in self.children:
                    self._check(child, now)
                self._enforce_deadline(now)
                time.sleep(self.poll_interval)
        finally:
            self._restore_signal_handlers(previous)
            self._kill_all()
        return self._exit_code()

    # -- children --------------------------------------------------------------------------------

    def _spawn(self, child: _Child, *, restart: bool) -> None:
        child.proc = subprocess.Popen(self.command, env=self.env, process_group=0)
        child.started_at = time.monotonic()
        child.restart_at = None
        log.info("child %d %s (pid %d)", child.index, "restarted" if restart else "started",
                 child.proc.pid)

    def _check(self, child: _Child, now: float) -> None:
        if child.proc is None:
            if child.restart_at is not None and now >= child.restart_at and not self._stopping:
                self._spawn(child, restart=True)
            return
        code = child.proc.poll()
        if code is None:
            return
        pid, child.proc, child.exit_code = child.proc.pid, None, code
        if self._stopping:
            log.info("child %d (pid %d) exited with %s", child.index, pid, describe_exit(code))
        elif code == 0 and self.burst:
            child.finished = True
            log.info("child %d (pid %d) finished: no task left (burst)", child.index, pid)
        elif code == EXIT_USAGE:
            log.error("child %d (pid %d) exited with code 2 (usage, import or config error); "
                      "not restarting, stopping the others", child.index, pid)
            self._fatal = True
            self.request_stop(signal.SIGTERM)
        else:
            delay = self._backoff(child, now)
            child.restart_at = now + delay
            log.warning("child %d (pid %d) exited unexpectedly with %s; restarting in %.1fs",
                        child.index, pid, describe_exit(code), delay)

    def _backoff(self, child: _Child, now: float) -> float:
        if now - child.started_at >= self.stable_after:
            child.quick_deaths = 0
        child.quick_deaths += 1
        return float(min(self.max_backoff, self.backoff * 2 ** (child.quick_deaths - 1)))

    # -- stopping --------------------------------------------------------------------------------

    @property
    def _stopping(self) -> bool:
        return self._stop_deadline is not None

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            first = not self._stopping
            if first:
                self._stop_deadline = time.monotonic() + self.stop_timeout
            log.info("%s: %s stop, forwarding to %d child(ren)", signal.Signals(signum).name,
                     "warm" if first else "cold", len(self.pids()))
            for child in self.children:
                child.restart_at = None
                if child.proc is not None:
                    child.proc.send_signal(signum)

    def _enforce_deadline(self, now: float) -> None:
        if self._stop_deadline is not None and now > self._stop_deadline and self.pids():
            log.error("children still running %.0fs after the stop signal: killing them",
                      self.stop_timeout)
            self._forced = True
            self._kill_all()

    def _kill_all(self) -> None:
        for child in self.children:
            if child.proc is not None and child.proc.poll() is None:
                child.proc.kill()
                child.proc.wait()
                child.exit_code = child.proc.returncode
                child.proc = None

    def _finished(self) -> bool:
        if self._stopping:
            return not self.pids() and not self._signals
        return self.burst and all(c.finished for c in self.children)

    def _exit_code(self) -> int:
        if self._fatal:
            return EXIT_USAGE
        if self._forced:
            return 1
        return 0 if all(c.exit_code == 0 for c in self.children) else 1

    # -- signals ---------------------------------------------------------------------------------

    def _install_signal_handlers(self) -> dict[int, object]:
        previous: dict[int, object] = {}

        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.request_stop(signum)

        for signum in FORWARDED_SIGNALS:
            try:
                previous[signum] = signal.signal(signum, on_signal)
            except ValueError:  # not the main thread: the caller stops us via request_stop()
                break
        return previous

    def _restore_signal_handlers(self, previous: dict[int, object]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
