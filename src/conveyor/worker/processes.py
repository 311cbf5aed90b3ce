"""A pool of child processes for sync tasks that must be killable.

Each child serves one task at a time over a pipe. A task that overruns its timeout gets its
child SIGKILLed and replaced; a child that dies mid-task is reported as a lost worker, so the
task's ``worker_lost`` count rises as when a whole worker dies. Heartbeats stay with the parent,
out of the task's reach, so a task that holds the GIL in C code cannot starve its own lease.

Messages are msgpack (the task reference, the stored payload, the context), never pickle.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import os
import signal
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import msgspec

_encoder = msgspec.msgpack.Encoder()
STARTED = b""
"""The child's first message when the task's function is about to run (a reply is never empty)."""
CHILD_START_SECONDS = 60.0
"""How long a child may take to start a task (spawn, imports) before it counts as timed out."""


@dataclass(frozen=True, slots=True)
class ChildReply:
    ok: bool
    result: bytes | None = None
    error: str | None = None
    retryable: bool = True
    lost: bool = False
    """The child died (killed or crashed) before it replied."""


class ChildTimeout(Exception):
    pass


class _Child:
    def __init__(self, context: Any, paths: list[str]) -> None:
        parent_end, child_end = multiprocessing.Pipe(duplex=True)
        self.conn: Connection = parent_end
        self.process = context.Process(
            target=_serve, args=(child_end, paths), name="conveyor-pool", daemon=True
        )
        self.process.start()
        child_end.close()

    def kill(self) -> None:
        if self.process.is_alive() and self.process.pid is not None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(timeout=5)
        self.conn.close()

    def send(self, message: bytes) -> None:
        self.conn.send_bytes(message)

    async def receive(self) -> bytes:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        fd = self.conn.fileno()

        def on_readable() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, on_readable)
        try:
            await ready
        finally:
            loop.remove_reader(fd)
        return self.conn.recv_bytes()


class ProcessPool:
    """``size`` children started on first use with the ``spawn`` method (fork-safe)."""

    def __init__(self, size: int, import_paths: list[str] | None = None) -> None:
        self.size = size
        self._context = multiprocessing.get_context("spawn")
        self._paths = import_paths or []
        self._idle: list[_Child] = []
        self._slots = asyncio.Semaphore(size)
        self._all: set[_Child] = set()
        self.replaced = 0

    async def run(
        self, module: str, qualname: str, payload: bytes, context: dict[str, Any],
        timeout: float | None,
    ) -> ChildReply:
        async with self._slots:
            child = self._idle.pop() if self._idle else self._spawn()
            try:
                child.send(_encoder.encode([module, qualname, payload, context]))
                # The timeout is the task's own: it starts when the child has imported and
                # decoded it (a child just spawned under load can take seconds to get there).
                raw = await asyncio.wait_for(
                    child.receive(), None if timeout is None else timeout + CHILD_START_SECONDS)
                if raw == STARTED:
                    raw = await asyncio.wait_for(child.receive(), timeout)
            except TimeoutError:
                self._retire(child)
                raise ChildTimeout(f"task exceeded its timeout of {timeout}s; its process "
                                   "was killed and replaced") from None
            except (EOFError, OSError, BrokenPipeError):
                # The pipe closes a moment before the child is reaped: wait for its exit code
                # (off the loop), since "killed by signal 9" and "exit 13" tell different stories.
                await asyncio.to_thread(child.process.join, 5)
                code = child.process.exitcode
                self._retire(child)
                return ChildReply(ok=False, lost=True,
                                  error=f"pool process died while running the task "
                                        f"(exit code {code})")
            except BaseException:
                self._retire(child)
                raise
            self._idle.append(child)
            ok, result, error, retryable = msgspec.msgpack.decode(raw)
            return ChildReply(ok=ok, result=result, error=error, retryable=retryable)

    def _spawn(self) -> _Child:
        child = _Child(self._context, self._paths)
        self._all.add(child)
        return child

    def _retire(self, child: _Child) -> None:
        child.kill()
        self._all.discard(child)
        self.replaced += 1

    def close(self) -> None:
        for child in list(self._all):
            child.kill()
        self._all.clear()
        self._idle.clear()


def _serve(conn: Connection, paths: list[str]) -> None:
    """The child's loop: import the task, run it, reply; one task at a time."""
    import sys

    from conveyor.context import TaskContext, set_current_task
    from conveyor.errors import SerializationError
    from conveyor.serialization import decode_payload, encode_result

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    for path in reversed(paths):
        if path not in sys.path:
            sys.path.insert(0, path)
    while True:
        try:
            raw = conn.recv_bytes()
        except (EOFError, OSError):
            return
        module, qualname, payload, context = msgspec.msgpack.decode(raw)
        retry_on: tuple[type[BaseException], ...] = (Exception,)
        try:
            func = _resolve(module, qualname)
            retry_on = getattr(getattr(func, "retry", None), "on", retry_on)
            func = getattr(func, "func", func)
            args, kwargs = decode_payload(payload)
            set_current_task(TaskContext(**context))
            conn.send_bytes(STARTED)
            value = func(*args, **kwargs)
            reply = [True, encode_result(value), None, False]
        except BaseException as exc:
            text = "".join(traceback.format_exception(exc))[-65536:]
            retryable = isinstance(exc, retry_on) and not isinstance(exc, SerializationError)
            reply = [False, None, text, retryable]
        finally:
            set_current_task(None)
        conn.send_bytes(_encoder.encode(reply))


def _resolve(module: str, qualname: str) -> Any:
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target
