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

Redis Cluster (``redis+cluster://host:port[,host:port...]``): the same plans over redis-py's
``RedisCluster`` clients. Each script call touches one slot (the plans split batches per tag),
independent calls of a plan run side by side on the async runner, scripts are loaded on every
primary on NOSCRIPT, and the wake-ups watch one signal list per tag (:mod:`wakeups`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import hiredis
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import (
    ClusterDownError,
    NoScriptError,
    RedisClusterException,
    ResponseError,
    SlotNotCoveredError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from conveyor.backends import base
from conveyor.backends.redis import direct, handoff, keys
from conveyor.backends.redis.checks import DURABILITY_MODES, startup_check
from conveyor.backends.redis.connections import use_async_connections
from conveyor.backends.redis.held import HeldConnection
from conveyor.backends.redis.plans import Command, Each, Eval, Plan, Planner
from conveyor.backends.redis.scripts import load_scripts
from conveyor.backends.redis.wakeups import SignalWatch, UrgentWatch
from conveyor.errors import BackendUnavailable, ConfigurationError

T = TypeVar("T")
FINAL_STRETCH_SECONDS = 0.12
"""How long before a wait ends it stops blocking and polls instead (see ``wait_for_work``)."""
FINAL_STRETCH_POLL_SECONDS = 0.002
log = logging.getLogger("conveyor.backends.redis")
SCRIPTS = load_scripts()
CHANGE_POLL_SECONDS = 0.005
WATCH_BLOCK_SECONDS = 1.0
"""How long a cluster watcher's BLPOP blocks before it blocks again (see ``wakeups``)."""
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError, ClusterDownError,
                SlotNotCoveredError)
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
KEYLESS = frozenset({"INFO", "CONFIG"})


class RedisBackend:
    """A :class:`~conveyor.backends.base.Backend` on one Redis server (``redis://host:port/db``,
    ``rediss://`` for TLS) or a Redis Cluster (``redis+cluster://host:port,host:port``)."""

    signals_priority = True
    """Enqueues that overtake waiting work are announced (see :meth:`wait_for_urgent`)."""
    claim_batch: int | None = 32
    """A script holds the server for its whole run, ~14 us per task it leases: claims of 256
    (a worker's slots and prefetch at 128 : 128) kept every other client waiting up to 3.6 ms
    at a time, and a priority-9 task enqueued behind a backlog waited for the claims queued
    ahead of the one that took it: 6.4-13.6 ms at the median of the P workload, against
    3.1-4.9 with claims of 32, which cost 16-20% of the drain rate (benchmarks/README.md)."""

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
        url, own = _own_url_options(url)
        durability = own.get("durability", durability)
        if "strict" in own:
            strict = _flag("strict", own["strict"])
        _check_url_options(url)
        if durability not in DURABILITY_MODES:
            raise ConfigurationError(f"durability must be one of {DURABILITY_MODES}")
        if socket_timeout_seconds < 1.0:
            raise ConfigurationError("socket_timeout_seconds must be at least 1")
        self.url = url
        self.durability = durability
        self.strict = strict
        self.cluster = url.split(":", 1)[0].lower() in CLUSTER_SCHEMES
        self._planner = Planner(clock, cluster=self.cluster)
        self._socket_timeout = socket_timeout_seconds
        self._retries = connect_retries
        self._lock = threading.Lock()
        self._pid = -1
        self._checked = False
        self._sync: Any = None
        self._async: dict[int, tuple[asyncio.AbstractEventLoop, Any]] = {}
        self._watches: dict[int, tuple[asyncio.AbstractEventLoop, SignalWatch]] = {}
        self._urgent: dict[int, tuple[asyncio.AbstractEventLoop, UrgentWatch]] = {}
        self._keepers: list[Any] = []
        self._offering: set[str] = set()
        """Waiters whose offers may stand (see :mod:`handoff`): a closed one withdraws them."""
        self._offer_loaded = False
        self._held: dict[str, HeldConnection] = {}
        """Each waiting thread's own connection, by worker id (:meth:`wait_in_thread`)."""
        self._inherited: list[Any] = []  # a parent's clients: never used, never closed here

    # -- runners ---------------------------------------------------------------------------------

    def execute(self, op: base.Transition[T]) -> T:
        client = self._client()
        if not self._checked:
            self._planner.wait_for_aof = self._run(client, self._startup_plan())
            self._checked = True
        return self._run(client, self._planner.plan(op))

    def declare_queue(self, queue: str, partitions: int = 1) -> None:
        """Split ``queue`` into ``partitions`` tags (see :mod:`partitions`); saved in Redis on
        the next enqueue or claim, so other clients learn it too."""
        self._planner.partitions.declare(queue, partitions)

    async def aexecute(self, op: base.Transition[T]) -> T:
        client = await self._aclient()
        if self.cluster and isinstance(op, base.Claim) and not op.min_priority:
            # An urgent claim (min_priority) does not take what the tokens announced.
            watch = self._watches.get(id(asyncio.get_running_loop()))
            if watch is not None:
                watch[1].forget([t for q in op.queues for t in self._planner.partitions.tags(q)])
        if not self._checked:
            self._planner.wait_for_aof = await self._arun(client, self._startup_plan())
            self._checked = True
        return await self._arun(client, self._planner.plan(op))

    def _run(self, client: Any, plan: Plan[T]) -> T:
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

    async def _arun(self, client: Any, plan: Plan[T]) -> T:
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

    @classmethod
    def _call(cls, client: Any, call: Eval | Command | Each) -> Any:
        if isinstance(call, Each):
            return [cls._call(client, c) for c in call.calls]
        if isinstance(call, Command):
            return client.execute_command(*call.args, **_routing(client, call))
        script = SCRIPTS[call.script]
        try:
            if isinstance(client, redis.Redis):
                try:
                    return direct.evalsha(client, script.sha, call.keys, call.args)
                except _UNAVAILABLE:
                    pass  # the call below retries, with back-off
            return client.evalsha(script.sha, len(call.keys), *call.keys, *call.args)
        except NoScriptError:
            client.script_load(script.source)
            return client.evalsha(script.sha, len(call.keys), *call.keys, *call.args)

    @classmethod
    async def _acall(cls, client: Any, call: Eval | Command | Each) -> Any:
        if isinstance(call, Each):
            replies = await asyncio.gather(*(cls._acall(client, c) for c in call.calls),
                                           return_exceptions=True)
            for reply in replies:
                if isinstance(reply, BaseException):
                    raise reply
            return replies
        if isinstance(call, Command):
            return await client.execute_command(*call.args, **_routing(client, call))
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

    async def wait_for_work(self, queues: Sequence[str], timeout: float,
                            waiter: base.Waiter | None = None) -> list[base.ClaimedTask]:
        """Block on the queues' signal lists (BLPOP) until a token arrives or ``timeout``.

        A producer pushes a token per task (enqueue, retry, release, recovery; capped per
        queue), and a claim that leaves a queue without PENDING tasks deletes its tokens. So a
        token waiting in the list means "work arrived since the last claim that emptied this
        queue": an enqueue landing between a fruitless claim and this wait is never lost, and
        each token wakes one waiter, not every idle worker at once. A partitioned queue waits on
        every partition's list. On a cluster, where one BLPOP cannot span slots, watcher tasks
        pop per tag instead (:mod:`wakeups`).

        On one server a ``waiter`` also watches its inboxes, ahead of the signal lists, and
        when it is open it offers to take a task at once, in the same round trip as each BLPOP
        (:mod:`handoff`): a task handed over returns here, claimed already.
        """
        if not queues:
            await asyncio.sleep(max(0.0, timeout))
            return []
        client = await self._aclient()
        tags = self._tags(queues)
        if self.cluster:
            try:
                await self._initialized(client)
            except BackendUnavailable as exc:
                log.warning("%s", exc)
                await asyncio.sleep(min(max(timeout, 0.0), 0.5))
                return []
            await self._watch(client).wait(tags, timeout)
            return []
        inboxes = [] if waiter is None else handoff.inboxes(tags, waiter)
        watched = inboxes + [keys.tag_keys(tag).signal for tag in tags]
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) >= 0.001:
            try:
                if left > FINAL_STRETCH_SECONDS + 0.05:
                    # Under the socket timeout, so a long wait is never mistaken for a dead
                    # server; and ending a stretch early, because Redis notices a blocking
                    # timeout only on its cron tick (every 100 ms at the default hz 10).
                    chunk = min(left - FINAL_STRETCH_SECONDS, self._socket_timeout - 0.5)
                    popped = await self._blocking_pop(client, watched, chunk, tags, waiter)
                    if popped:
                        return self._handed(popped[0], [popped[1]], inboxes)
                else:
                    # The last stretch before a due time is polled, so a delayed task starts
                    # within milliseconds of due instead of up to a cron tick late.
                    popped = await client.lmpop(len(watched), *watched, direction="LEFT")
                    if popped:
                        return self._handed(popped[0], popped[1], inboxes)
                    await asyncio.sleep(min(left, FINAL_STRETCH_POLL_SECONDS))
            except _UNAVAILABLE as exc:
                log.warning("redis %s: waiting for work failed: %s", self.url, exc)
                await asyncio.sleep(min(max(left, 0.0), 0.5))
        return []

    async def _blocking_pop(self, client: Any, watched: list[str], seconds: float,
                            tags: list[str], waiter: base.Waiter | None) -> Any:
        """BLPOP over ``watched``, after the offer ``waiter`` makes (or withdraws) in the same
        round trip. The first offer of a client goes alone, to load the script if it must."""
        call = self._offer(tags, waiter, seconds)
        if call is None:
            return await client.blpop(watched, timeout=seconds)
        if not self._offer_loaded:
            await self._acall(client, call)
            self._offer_loaded = True
            return await client.blpop(watched, timeout=seconds)
        sha = SCRIPTS[call.script].sha
        try:
            offered, popped = await direct.offer_and_pop(client, sha, call.keys, call.args,
                                                         watched, seconds)
        except _UNAVAILABLE:  # once more through redis-py, which retries with back-off
            async with client.pipeline(transaction=False) as pipe:
                pipe.evalsha(sha, len(call.keys), *call.keys, *call.args)
                pipe.blpop(watched, timeout=seconds)
                offered, popped = await pipe.execute(raise_on_error=False)
            if isinstance(popped, BaseException):
                raise popped from None
        self._offered(offered)
        return popped

    def _offer(self, tags: list[str], waiter: base.Waiter | None, seconds: float
               ) -> Eval | None:
        """The offer (or withdrawal) to send with a BLPOP of ``seconds``, if any."""
        if waiter is None or not (waiter.open or waiter.worker_id in self._offering):
            return None
        hold = seconds + handoff.OFFER_MARGIN_SECONDS if waiter.open else 0.0
        if waiter.open:
            self._offering.add(waiter.worker_id)
        else:
            self._offering.discard(waiter.worker_id)
        return handoff.offer(tags, waiter, hold, self._planner.now_arg())

    def _offered(self, reply: Any) -> None:
        if isinstance(reply, NoScriptError):
            self._offer_loaded = False  # a flushed or restarted server: load it next time
        elif isinstance(reply, BaseException):
            log.warning("redis %s: offering to take work failed: %s", self.url, reply)

    @staticmethod
    def _handed(key: bytes, entries: list[bytes], inboxes: list[str]
                ) -> list[base.ClaimedTask]:
        """What a pop brought: tasks handed over from an inbox, or (from a signal list) none."""
        if key.decode() not in inboxes:
            return []
        return handoff.tasks_of(entries)

    @property
    def waits_in_thread(self) -> bool:
        """On one server a pool thread may wait (:meth:`wait_in_thread`); a cluster makes no
        offers, and its watchers live on the loop (:mod:`wakeups`)."""
        return not self.cluster

    def wait_in_thread(self, queues: Sequence[str], seconds: float, waiter: base.Waiter
                       ) -> list[base.ClaimedTask]:
        """:meth:`wait_for_work` for a pool thread, which blocks in it: one ``BLPOP`` of at
        most ``seconds`` (kept under the socket timeout) after the waiter's offer, in one
        write, on a connection the waiter holds (:mod:`held`). Returns the task handed over,
        or nothing (a wake-up token, the timeout, or :meth:`interrupt_wait`). No retries here:
        the caller logs a failure and backs off."""
        if not queues:
            time.sleep(max(0.0, seconds))
            return []
        client = self._client()
        tags = self._tags(queues)
        inboxes = handoff.inboxes(tags, waiter)
        watched = inboxes + [keys.tag_keys(tag).signal for tag in tags]
        seconds = max(0.01, min(seconds, self._socket_timeout - 0.5))
        pop = hiredis.pack_command(("BLPOP", *watched, seconds))  # type: ignore[arg-type]
        try:
            call = self._offer(tags, waiter, seconds)
            if call is not None and not self._offer_loaded:
                self._call(client, call)  # loads the script if the server lacks it
                self._offer_loaded = True
                call = None
            held = self._held.get(waiter.worker_id)
            if held is None or held.client is not client:
                held = self._held[waiter.worker_id] = HeldConnection(client, self._socket_timeout)
            if call is None:
                [popped] = held.call([pop])
            else:
                offer = direct.evalsha_packed(SCRIPTS[call.script].sha, call.keys, call.args)
                offered, popped = held.call([offer, pop])
                self._offered(offered)
        except _UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc
        if isinstance(popped, ResponseError):
            raise popped
        return self._handed(popped[0], [popped[1]], inboxes) if popped else []

    async def interrupt_wait(self, queues: Sequence[str], waiter: base.Waiter) -> None:
        """End ``waiter``'s :meth:`wait_in_thread` now: a stop marker into its first inbox,
        which its ``BLPOP`` watches ahead of everything else. (:meth:`withdraw` empties the
        inboxes afterwards, the marker with them.)"""
        if not queues:
            return
        client = await self._aclient()
        try:
            await client.lpush(handoff.inboxes(self._tags(queues)[:1], waiter)[0], handoff.STOP)
        except _UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc

    async def withdraw(self, queues: Sequence[str], waiter: base.Waiter
                       ) -> list[base.ClaimedTask]:
        """Withdraw the offers first, then empty the inboxes: once the offers are gone no
        enqueue pushes into them, so nothing lands after the pops."""
        self._offering.discard(waiter.worker_id)
        held = self._held.pop(waiter.worker_id, None)
        if held is not None:
            held.close()
        if self.cluster or not queues:
            return []
        client = await self._aclient()
        tags = self._tags(queues)
        try:
            await self._acall(client, handoff.offer(tags, waiter, 0.0, self._planner.now_arg()))
            async with client.pipeline(transaction=False) as pipe:
                for inbox in handoff.inboxes(tags, waiter):
                    pipe.lpop(inbox, handoff.INBOX_DRAIN)
                drained = await pipe.execute()
        except _UNAVAILABLE as exc:
            raise self._unavailable(exc) from exc
        return [task for entries in drained for task in handoff.tasks_of(entries or ())]

    async def wait_for_urgent(self, queues: Sequence[str], timeout: float) -> int | None:
        """The highest priority announced on the queues' urgent streams since the previous
        return (an enqueue that went ahead of every task waiting in its queue), or None after
        ``timeout``. Read by watcher tasks that block in ``XREAD`` (:class:`UrgentWatch`)."""
        if not queues:
            await asyncio.sleep(max(0.0, timeout))
            return None
        client = await self._aclient()
        tags = self._tags(queues)
        loop = asyncio.get_running_loop()
        entry = self._urgent.get(id(loop))
        if entry is None or entry[0] is not loop:
            block = min(WATCH_BLOCK_SECONDS, self._socket_timeout - 0.5)
            self._urgent = {k: v for k, v in self._urgent.items() if not v[0].is_closed()}
            entry = self._urgent[id(loop)] = (loop, UrgentWatch(client, block, self.url,
                                                                self.cluster))
        return await entry[1].wait(tags, timeout)

    def _tags(self, queues: Sequence[str]) -> list[str]:
        """Every tag of ``queues``: each queue's partitions."""
        return [tag for q in queues for tag in self._planner.partitions.tags(q)]

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
            if self.cluster:
                client = self._client()
                infos = client.info("persistence", target_nodes=client.PRIMARIES)
                return sorted((node, info.get("rdb_changes_since_last_save"))
                              for node, info in infos.items())
            info = self._client().info("persistence")
        except _UNAVAILABLE:
            return None
        return (info.get("rdb_changes_since_last_save"), info.get("rdb_last_save_time"))

    def _watch(self, client: Any) -> SignalWatch:
        loop = asyncio.get_running_loop()
        entry = self._watches.get(id(loop))
        if entry is None or entry[0] is not loop:
            block = min(WATCH_BLOCK_SECONDS, self._socket_timeout - 0.5)
            self._watches = {k: v for k, v in self._watches.items() if not v[0].is_closed()}
            entry = self._watches[id(loop)] = (loop, SignalWatch(client, block, self.url))
        return entry[1]

    # -- clients ---------------------------------------------------------------------------------

    def _options(self, asynchronous: bool) -> dict[str, Any]:
        # Each client needs the Retry of its own kind: an async client given the sync one
        # retries nothing (its call_with_retry returns the coroutine unawaited, so the error
        # is raised outside the retry loop), and every dropped connection then failed a whole
        # call at once.
        retry = AsyncRetry if asynchronous else Retry
        options: dict[str, Any] = {
            "socket_timeout": self._socket_timeout,
            "socket_connect_timeout": self._socket_timeout,
            "socket_keepalive": True,
            "retry": retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), self._retries),
        }
        if not self.cluster:
            options["retry_on_error"] = [RedisConnectionError, RedisTimeoutError]
        return options

    def _new_client(self, asynchronous: bool) -> Any:
        if not self.cluster:
            if asynchronous:
                return use_async_connections(redis.asyncio.Redis.from_url(
                    self.url, **self._options(asynchronous=True)))
            return redis.Redis.from_url(self.url, **self._options(asynchronous=False))
        module: Any = redis.asyncio.cluster if asynchronous else redis.cluster
        nodes, auth = cluster_nodes(self.url)
        return module.RedisCluster(
            startup_nodes=[module.ClusterNode(host, port) for host, port in nodes],
            ssl=self.url.lower().startswith("rediss"), **auth,
            **self._options(asynchronous),
        )

    def _forked(self) -> bool:
        """True in a child forked since the clients were made: it must not share sockets."""
        pid = os.getpid()
        if self._pid == pid:
            return False
        with self._lock:
            if self._pid != pid:
                self._inherited += [self._sync, self._async, self._keepers, self._watches,
                                    self._urgent]
                self._sync, self._async, self._keepers = None, {}, []
                self._watches, self._urgent = {}, {}
                self._offering, self._held = set(), {}
                self._pid = pid
        return True

    def _client(self) -> Any:
        self._forked()
        client = self._sync
        if client is None:
            with self._lock:
                if self._sync is None:
                    try:
                        self._sync = self._new_client(asynchronous=False)
                    except RedisClusterException as exc:  # no startup node answered
                        raise self._unavailable(exc) from exc
                client = self._sync
        return client

    async def _aclient(self) -> Any:
        self._forked()
        loop = asyncio.get_running_loop()
        entry = self._async.get(id(loop))
        if entry is not None and entry[0] is loop:
            return entry[1]
        client = self._new_client(asynchronous=True)
        self._async = {k: v for k, v in self._async.items() if not v[0].is_closed()}
        self._async[id(loop)] = (loop, client)
        # asyncio.run() finalizes live async generators before closing its loop: this one
        # closes the client there, while the loop can still run the close.
        keeper = _close_on_loop_shutdown(client)
        await keeper.__anext__()
        self._keepers = [k for k in self._keepers if k.ag_running or k.ag_frame is not None]
        self._keepers.append(keeper)
        if self.cluster:
            await self._initialized(client)
        return client

    async def _initialized(self, client: Any) -> None:
        """Learn the slot map before any watcher starts: watcher tasks that all start on a
        fresh client race into its initialization, where redis-py can lose a cancellation
        (and the task then outlives its loop's shutdown). Cheap once done."""
        try:
            await client.initialize()
        except (*_UNAVAILABLE, RedisClusterException) as exc:
            raise self._unavailable(exc) from exc

    async def warm_up(self, connections: int) -> None:
        """At a worker's start each connection opened on demand took 18-35 ms (its handshake's
        round trips waited on a loop busy with the first batch), and the urgent watcher and
        the first urgent claim waited for theirs: a priority-9 task enqueued then waited too.
        A cluster client opens its connections per node as the slots are used: not here."""
        if self.cluster:
            return
        pool = (await self._aclient()).connection_pool
        held = []
        try:
            for _ in range(connections):
                held.append(await pool.get_connection())
        except _UNAVAILABLE as exc:
            log.debug("redis %s: opening connections ahead failed: %s", self.url, exc)
        finally:
            for connection in held:
                await pool.release(connection)

    async def upkeep(self) -> None:
        """Nothing to do: Redis frees a deleted record's memory at once."""

    async def release_loop(self) -> None:
        if self._forked():
            return
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._async.pop(id(loop), None)
            owned = [found.pop(id(loop))[1] for found in (self._watches, self._urgent)
                     if id(loop) in found and found[id(loop)][0] is loop]
        if entry is not None and entry[0] is loop:
            await _aclose(entry[1], owned)

    def close(self) -> None:
        with self._lock:
            if self._pid != os.getpid():
                return
            if self._sync is not None:
                self._sync.close()
            self._sync = None
            entries, self._async = list(self._async.values()), {}
            watches, self._watches = dict(self._watches), {}
            urgent, self._urgent = dict(self._urgent), {}
        for loop, client in entries:
            owned: list[SignalWatch | UrgentWatch] = [
                found[1] for found in (watches.get(id(loop)), urgent.get(id(loop)))
                if found is not None and found[0] is loop
            ]
            _close_async(loop, client, owned)


def _routing(client: Any, call: Command) -> dict[str, Any]:
    """Where a cluster sends a command without a key (the startup check's INFO and CONFIG):
    to its default node. Commands with keys go to their slot's node by themselves."""
    if str(call.args[0]).upper() in KEYLESS and hasattr(client, "get_default_node"):
        return {"target_nodes": client.get_default_node()}
    return {}


def cluster_nodes(url: str) -> tuple[list[tuple[str, int]], dict[str, str]]:
    """The startup nodes and credentials of ``redis+cluster://[user:password@]h:p,h:p``."""
    rest = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
    auth: dict[str, str] = {}
    if "@" in rest:
        credentials, rest = rest.rsplit("@", 1)
        user, _, password = credentials.rpartition(":")
        auth = {"password": unquote(password)} | ({"username": unquote(user)} if user else {})
    nodes = []
    for node in rest.split(","):
        host, _, port = node.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigurationError(f"bad node {node!r} in {url!r}: expected host:port")
        nodes.append((host.strip("[]"), int(port)))
    return nodes, auth


async def _close_on_loop_shutdown(client: Any) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await client.aclose()


async def _aclose(client: Any, watches: Sequence[SignalWatch | UrgentWatch]) -> None:
    for watch in watches:
        await watch.aclose()
    await client.aclose()


def _close_async(loop: asyncio.AbstractEventLoop, client: Any,
                 watches: Sequence[SignalWatch | UrgentWatch]) -> None:
    """Close an async client (its watchers first) from outside its loop, if that loop can
    still run it."""
    if loop.is_closed():
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        loop.create_task(_aclose(client, watches))
    elif loop.is_running():
        future = asyncio.run_coroutine_threadsafe(_aclose(client, watches), loop)
        try:
            future.result(timeout=5.0)
        except Exception as exc:
            log.debug("closing a redis client failed: %s", exc)
    else:
        loop.run_until_complete(_aclose(client, watches))


OWN_URL_OPTIONS = ("durability", "strict")
"""Query options of a redis:// URL that are Conveyor's (``?durability=none&strict=true``), taken
out before redis-py reads the rest: it would pass them on to its connections as arguments."""


def _own_url_options(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = {key: value for key, value in query if key in OWN_URL_OPTIONS}
    if not own:
        return url, own
    rest = urlencode([(key, value) for key, value in query if key not in OWN_URL_OPTIONS])
    return urlunsplit(parts._replace(query=rest)), own


def _check_url_options(url: str) -> None:
    """Refuse a query option redis-py does not know now, as a configuration error: redis-py
    would pass it on to each connection it opens, and the first command would fail with a
    ``TypeError`` about an unexpected argument."""
    if url.split(":", 1)[0].lower() in CLUSTER_SCHEMES:
        return  # cluster_nodes() reads these URLs itself
    try:
        redis.ConnectionPool.from_url(url).make_connection()  # builds, does not connect
    except TypeError as exc:
        raise ConfigurationError(f"redis URL {url!r}: {exc}") from None


def _flag(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"redis URL option {name}={text!r}: expected true or false")
