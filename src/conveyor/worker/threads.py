"""An elastic thread pool for sync tasks that can abandon a thread.

A thread cannot be killed. When a sync task overruns its timeout the worker fails the task and
stops waiting; the thread runs on, unseen, until the function returns. ``ThreadPoolExecutor``
would count that thread against its fixed size for ever, so this pool simply starts another
thread whenever no idle one is left: the worker's slot count, not the pool, bounds concurrency.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


class ThreadRunner:
    def __init__(self, name: str = "conveyor-task") -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._idle = 0
        self._threads: list[threading.Thread] = []

    @property
    def thread_count(self) -> int:
        return sum(1 for t in self._threads if t.is_alive())

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._idle > 0:
                self._idle -= 1
            else:
                thread = threading.Thread(
                    target=self._serve, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        self._jobs.put((future, fn))
        return future

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, fn = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:
                    future.set_exception(exc)
            with self._lock:
                self._idle += 1

    def shutdown(self) -> None:
        """Ask idle threads to exit; busy (or abandoned) ones exit when their task returns."""
        for _ in self._threads:
            self._jobs.put(None)
        self._threads = [t for t in self._threads if t.is_alive()]
