"""The production backend: Redis, every state transition one Lua script (atomic, one round trip).

Shape: each transition is described once in :mod:`plans` (script, KEYS, ARGV, reply parser); a
thin sync runner over ``redis.Redis`` and a thin async runner over ``redis.asyncio.Redis`` execute
the same description. Scripts are called by SHA and loaded on NOSCRIPT.

Time: every script reads Redis ``TIME``, so leases and due times never depend on a worker's
clock. The ``clock=`` option exists for tests only (the conformance suite moves time by hand):
its value is passed to each script as an override of ``TIME``. Never set it in production.

Clients are created lazily and again in a forked child (pid check), so an app imported before
a pre-forking server forks is safe. The async client is per event loop (a redis.asyncio
connection belongs to the loop that opened it) and is closed when that loop shuts down.

Connection faults: redis-py retries connection errors and timeouts with exponential backoff
(``connect_retries`` times, about 3 s in all by default); past that the call raises
:class:`BackendUnavailable`, which the worker logs before it tries again. A retried call whose
first try did reach the server is at-least-once: a claim whose reply was lost leaves its tasks
leased until the lease runs out; a repeated enqueue fails with "duplicate task id".

Wake-ups: see :meth:`RedisBackend.wait_for_work`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

import redis
import redis.asyncio
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from conveyor.backends import base
from conveyor.backends.redis import keys
from conveyor.backends.redis.checks import DURABILITY_MODES, startup_check
from conveyor.backends.redis.plans import Command, Eval, Plan, Planner
from conveyor.backends.redis.scripts import load_scripts
from conveyor.errors import BackendUnavailable, ConfigurationError

T = TypeVar("T")
FINAL_STRETCH_SECONDS = 0.12
"""How long before a wait ends it stops blocking and polls instead (see ``wait_for_work``)."""
FINAL_STRETCH_POLL_SECONDS = 0.002
log = logging.getLogger("conveyor.backends.redis")
SCRIPTS = load_scripts()
CHANGE_POLL_SECONDS = 0.005
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisBackend:
    """A :class:`~conveyor.backends.base.Backend` on one Redis server (``redis://host:port/db``,
    ``rediss://`` for TLS)."""

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] | None = None,
        durability: str = "always",
        strict: bool = False,
        socket_timeout_seconds: float = 5.0,
        connect_retries: int = 6,
    ) -> None:
        if durability not in DURABILITY_MODES:
            raise ConfigurationError(f"durability must be one of {DURABILITY_MODES}")
        if socket_timeout_seconds < 1.0:
            raise ConfigurationError("socket_timeout_seconds must be at least 1")
        self.url = url
        self.durability = durability
        self.strict = strict
        self._planner = Planner(clock)
        self._socket_timeout = socket_timeout_seconds
        self._retries = connect_retries
        self._lock = threading.Lock()
        self._pid = -1
        self._checked = False
        self._sync: redis.Redis | None = None
        self._async: dict[int, tuple[asyncio.AbstractEventLoop, redis.asyncio.Redis]] = {}
        self._keepers: list[Any] = []
        self._inherited: list[Any] = []  # a parent's clients: never used, never closed here

    # -- runners ---------------------------------------------------------------------------------

    def execute(self, op: base.Transition[T]) -> T:
        client = self._client()
        if not self._checked:
            self._planner.wait_for_aof = self._run(client, self._startup_plan())
            self._checked = True
        return self._run(client, self._planner.plan(op))

    async def aexecute(self, op: base.Transition[T]) -> T:
        client = await self._aclient()
        if not self._checked:
            self._planner.wait_for_aof = await self._arun(client, self._startup_plan())
            self._checked = True
        return await self._arun(client, self._planner.plan(op))

    def _run(self, client: redis.Redis, plan: Plan[T]) -> T:
        reply: Any = None
        error: BaseException | None = None
        while True:
            try:
                call = plan.send(reply) if error is None else plan.throw(error)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            try:
                reply, error = self._call(client, call), None
            except ResponseError as exc:
                reply, error = None, exc
            except _UNAVAILABLE as exc:
                plan.close()
                raise self._unavailable(exc) from exc

    async def _arun(self, client: redis.asyncio.Redis, plan: Plan[T]) -> T:
        reply: Any = None
        error: BaseException | None = None
        while True:
            try:
                call = plan.send(reply) if error is None else plan.throw(error)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            try:
                reply, error = await self._acall(client, call), None
            except ResponseError as exc:
                reply, error = None, exc
            except _UNAVAILABLE as exc:
                plan.close()
                raise self._unavailable(exc) from exc

    @staticmethod
    def _call(client: redis.Redis, call: Eval | Command) -> Any:
        if isinstance(call, Command):
            return client.execute_command(*call.args)  # type: ignore[no-untyped-call]
        script = SCRIPTS[call.script]
        try:
            return client.evalsha(script.sha, len(call.keys), *call.keys, *call.args)
        except NoScriptError:
            client.script_load(script.source)
            return client.evalsha(script.sha, len(call.keys), *call.keys, *call.args)

    @staticmethod
    async def _acall(client: redis.asyncio.Redis, call: Eval | Command) -> Any:
        if isinstance(call, Command):
            return await client.execute_command(*call.args)  # type: ignore[no-untyped-call]
        script = SCRIPTS[call.script]
        try:
            return await client.evalsha(script.sha, len(call.keys), *call.keys, *call.args)
        except NoScriptError:
            await client.script_load(script.source)
            return await client.evalsha(script.sha, len(call.keys), *call.keys, *call.args)

    def _unavailable(self, exc: BaseException) -> BackendUnavailable:
        """The caller (the worker, the CLI) reports it: one line, not one per layer."""
        log.debug("redis %s unreachable after %d retries: %s", self.url, self._retries, exc)
        return BackendUnavailable(f"redis {self.url} unreachable: {exc}")

    def _startup_plan(self) -> Plan[bool]:
        return startup_check(self.url, self.durability, self.strict)

    # -- wake-ups --------------------------------------------------------------------------------

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        """Block on the queues' signal lists (BLPOP) until a token arrives or ``timeout``.

        A producer pushes a token per task (enqueue, retry, release, recovery; capped per
        queue), and a claim that leaves a queue without PENDING tasks deletes its tokens. So a
        token waiting in the list means "work arrived since the last claim that emptied this
        queue": an enqueue landing between a fruitless claim and this wait is never lost, and
        each token wakes one waiter, not every idle worker at once.
        """
        if not queues:
            await asyncio.sleep(max(0.0, timeout))
            return
        client = await self._aclient()
        signals = [keys.queue_keys(q).signal for q in queues]
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) >= 0.001:
            try:
                if left > FINAL_STRETCH_SECONDS + 0.05:
                    # Under the socket timeout, so a long wait is never mistaken for a dead
                    # server; and ending a stretch early, because Redis notices a blocking
                    # timeout only on its cron tick (every 100 ms at the default hz 10).
                    chunk = min(left - FINAL_STRETCH_SECONDS, self._socket_timeout - 0.5)
                    if await client.blpop(signals, timeout=chunk):
                        return
                else:
                    # The last stretch before a due time is polled, so a delayed task starts
                    # within milliseconds of due instead of up to a cron tick late.
                    if await client.lmpop(len(signals), *signals, direction="LEFT"):
                        return
                    await asyncio.sleep(min(left, FINAL_STRETCH_POLL_SECONDS))
            except _UNAVAILABLE as exc:
                log.warning("redis %s: waiting for work failed: %s", self.url, exc)
                await asyncio.sleep(min(max(left, 0.0), 0.5))

    def wait_for_change(self, timeout: float) -> None:
        """Poll Redis's count of writes since the last save (``INFO persistence``): it moves on
        any write, so this wakes for every transition (and for other writers too: a hint)."""
        deadline = time.monotonic() + timeout
        start = self._write_count()
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(CHANGE_POLL_SECONDS, left))
            if self._write_count() != start:
                return

    def _write_count(self) -> Any:
        try:
            info = self._client().info("persistence")
        except _UNAVAILABLE:
            return None
        return (info.get("rdb_changes_since_last_save"), info.get("rdb_last_save_time"))

    # -- clients ---------------------------------------------------------------------------------

    def _options(self) -> dict[str, Any]:
        return {
            "socket_timeout": self._socket_timeout,
            "socket_connect_timeout": self._socket_timeout,
            "socket_keepalive": True,
            "retry": Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), self._retries),
            "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        }

    def _forked(self) -> bool:
        """True in a child forked since the clients were made: it must not share sockets."""
        pid = os.getpid()
        if self._pid == pid:
            return False
        with self._lock:
            if self._pid != pid:
                self._inherited += [self._sync, self._async, self._keepers]
                self._sync, self._async, self._keepers = None, {}, []
                self._pid = pid
        return True

    def _client(self) -> redis.Redis:
        self._forked()
        client = self._sync
        if client is None:
            with self._lock:
                if self._sync is None:
                    self._sync = redis.Redis.from_url(self.url, **self._options())
                client = self._sync
        return client

    async def _aclient(self) -> redis.asyncio.Redis:
        self._forked()
        loop = asyncio.get_running_loop()
        entry = self._async.get(id(loop))
        if entry is not None and entry[0] is loop:
            return entry[1]
        client = redis.asyncio.Redis.from_url(self.url, **self._options())
        self._async = {k: v for k, v in self._async.items() if not v[0].is_closed()}
        self._async[id(loop)] = (loop, client)
        # asyncio.run() finalizes live async generators before closing its loop: this one
        # closes the client there, while the loop can still run the close.
        keeper = _close_on_loop_shutdown(client)
        await keeper.__anext__()
        self._keepers = [k for k in self._keepers if k.ag_running or k.ag_frame is not None]
        self._keepers.append(keeper)
        return client

    def close(self) -> None:
        with self._lock:
            if self._pid != os.getpid():
                return
            if self._sync is not None:
                self._sync.close()
            self._sync = None
            entries, self._async = list(self._async.values()), {}
        for loop, client in entries:
            _close_async(loop, client)


async def _close_on_loop_shutdown(client: redis.asyncio.Redis) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await client.aclose()


def _close_async(loop: asyncio.AbstractEventLoop, client: redis.asyncio.Redis) -> None:
    """Close an async client from outside its loop, if that loop can still run it."""
    if loop.is_closed():
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        loop.create_task(client.aclose())
    elif loop.is_running():
        future = asyncio.run_coroutine_threadsafe(client.aclose(), loop)
        try:
            future.result(timeout=5.0)
        except Exception as exc:
            log.debug("closing a redis client failed: %s", exc)
    else:
        loop.run_until_complete(client.aclose())
