"""PostgreSQL: ``FOR UPDATE SKIP LOCKED`` claims, LISTEN/NOTIFY wake-ups, transactional enqueue
and transactional completion.

Connections: a psycopg ``ConnectionPool`` for sync callers and an ``AsyncConnectionPool`` for
each event loop that uses the backend (a pool's tasks live on the loop that opened it; the pool
is closed when ``asyncio.run`` finalizes that loop). Both run the same plans (``plans.py``)
through two thin runners (``runners.py``). Everything opens lazily on first use, and a forked
child drops what it inherited without closing it (those sockets are the parent's) and opens its
own.

Time: every statement reads the server's ``clock_timestamp()``, never the worker's clock, so a
worker with a skewed clock can neither steal nor lose a lease. ``clock=`` (tests only) passes a
reading of its own instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from conveyor.backends import base
from conveyor.backends.postgres import plans, schema
from conveyor.backends.postgres.listener import Listener, Mark
from conveyor.backends.postgres.runners import CHANGE_MARK_SQL, run_async, run_sync
from conveyor.errors import BackendUnavailable, ConfigurationError

T = TypeVar("T")
log = logging.getLogger("conveyor.postgres")
CHANGE_POLL_SECONDS = 0.005
REOPEN_TIMEOUT = 1.0
"""How long a pool opened after an outage tries before its call fails (see _drop_sync_pool)."""
OFFER_SECONDS = 2.0
"""How long an idle worker's offer holds unless renewed (0006_offers.sql). Single tasks sent to
a worker that died while waiting go to nobody for at most this long; they wait for another
worker's next claim (its idle timeout at the latest)."""
OFFER_RENEW_MARGIN_SECONDS = 1.0
"""A waiting worker renews its offer this long before it would lapse."""


@dataclass
class _LoopPool:
    """The async pool of one event loop, and the generator that closes it at loop shutdown."""

    loop: asyncio.AbstractEventLoop
    ready: asyncio.Future[AsyncConnectionPool]
    keeper: AsyncGenerator[None, None] | None = None


class PostgresBackend:
    """A :class:`~conveyor.backends.base.Backend` on one PostgreSQL database (and schema).

    ``migrate``: apply pending migrations on first use (default), or only check that none is
    pending. ``pool_min_size`` / ``pool_max_size`` size each pool; transactional tasks hold a
    sync connection each while they run, so ``pool_max_size`` should be at least the worker's
    concurrency when it runs them.
    """

    signals_priority = False
    claim_batch: int | None = None
    """Claims run side by side (``SKIP LOCKED``) and each costs a commit: batches of 32 cost
    30% of the drain rate."""

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] | None = None,
        migrate: bool = True,
        pool_min_size: int = 1,
        pool_max_size: int = 10,
        connect_timeout_seconds: float = 10.0,
    ) -> None:
        try:
            params = pg_conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise ConfigurationError(f"invalid PostgreSQL URL: {exc}") from None
        if pool_min_size < 0 or pool_max_size < max(1, pool_min_size):
            raise ConfigurationError("need 0 <= pool_min_size <= pool_max_size, and a max >= 1")
        self.url = url
        self.clock = clock
        self._where = f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/" \
                      f"{params.get('dbname', '')}"
        self._migrate = migrate
        self._min_size = pool_min_size
        self._max_size = pool_max_size
        self._timeout = connect_timeout_seconds
        self._session = session_settings(url)
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._schema_ready = False
        self._pool: ConnectionPool | None = None
        self._loop_pools: dict[asyncio.AbstractEventLoop, _LoopPool] = {}
        self._listener: Listener | None = None
        self._seen_at_claim: tuple[Listener, Mark] | None = None
        self._offers: dict[str, tuple[tuple[str, ...], str, float]] = {}
        """Worker id -> (queues, channel) of its live offer, and when to renew it (monotonic)."""
        self._local_commits = 0
        self._reopening = False
        self._closing: set[asyncio.Task[None]] = set()

    # -- runners ---------------------------------------------------------------------------------

    def execute(self, op: base.Transition[T]) -> T:
        spec = self._spec(op, own=True)
        if isinstance(op, base.Claim):
            self._before_claim()
        plan: plans.Plan[T] = spec.plan(op, self._now())
        with self._unavailable():
            pool = self._sync_pool()
        try:
            with self._unavailable(), pool.connection() as conn:
                result = run_sync(conn, plan, transaction=spec.transaction)
        except BackendUnavailable:
            self._drop_sync_pool(pool)
            raise
        self._local_commits += spec.writes
        return result

    async def aexecute(self, op: base.Transition[T]) -> T:
        spec = self._spec(op, own=True)
        if isinstance(op, base.Claim):
            self._before_claim()
        pool = await self._async_pool()
        plan: plans.Plan[T] = spec.plan(op, self._now())
        result = await self._arun(pool, plan, transaction=spec.transaction)
        self._local_commits += spec.writes
        return result

    async def _arun(self, pool: AsyncConnectionPool, plan: plans.Plan[T], *,
                    transaction: bool = False) -> T:
        try:
            with self._unavailable():
                async with pool.connection() as conn:
                    return await run_async(conn, plan, transaction=transaction)
        except BackendUnavailable:
            self._drop_async_pool(pool)
            raise

    def execute_on(self, connection: Any, op: base.Transition[T]) -> T:
        """Run ``op`` on the caller's psycopg connection, inside whatever transaction it has open
        (transactional enqueue): nothing is committed here, so the caller's rollback undoes it
        and its commit makes it durable, under the caller's ``synchronous_commit``."""
        if not isinstance(connection, psycopg.Connection):
            raise ConfigurationError(
                f"connection= must be a psycopg 3 Connection, got {type(connection).__name__}"
                + (" (use aenqueue for an AsyncConnection)"
                   if isinstance(connection, psycopg.AsyncConnection) else "")
            )
        self._ensure_schema()
        plan: plans.Plan[T] = self._spec(op).plan(op, self._now())
        return run_sync(connection, plan, transaction=False)

    async def aexecute_on(self, connection: Any, op: base.Transition[T]) -> T:
        """:meth:`execute_on` for a psycopg ``AsyncConnection``."""
        if not isinstance(connection, psycopg.AsyncConnection):
            raise ConfigurationError(
                f"connection= must be a psycopg 3 AsyncConnection in async code, got "
                f"{type(connection).__name__}"
            )
        if not self._schema_ready:
            await asyncio.to_thread(self._ensure_schema)
        plan: plans.Plan[T] = self._spec(op).plan(op, self._now())
        return await run_async(connection, plan, transaction=False)

    def run_transactional(
        self, claimed: base.ClaimedTask, body: Callable[[psycopg.Connection[Any]], bytes | None]
    ) -> bool:
        """Transactional completion: run ``body(connection)`` in a transaction that also marks
        the task DONE, guarded by its lease token, then commit both at once.

        Returns False, having rolled everything back, when the lease was lost (another worker
        owns the task now, and will run it in a transaction of its own). An exception from
        ``body`` rolls back and propagates (the worker then fails the task as usual). Blocking:
        the worker calls it in a thread.
        """
        with self._sync_pool().connection() as conn:
            try:
                with conn.transaction():
                    result = body(conn)
                    op = base.Complete(
                        [base.Completion(claimed.id, claimed.lease_token, result, claimed.queue)]
                    )
                    if run_sync(conn, plans.complete(op, self._now()), transaction=False):
                        raise _Rollback
            except _Rollback:
                return False
        self._local_commits += 1
        return True

    # -- wake-ups --------------------------------------------------------------------------------

    async def wait_for_work(self, queues: Sequence[str], timeout: float,
                            waiter: base.Waiter | None = None) -> list[base.ClaimedTask]:
        """Waits for a notification (:mod:`listener`). Hands nothing over.

        A ``waiter`` that is open keeps an offer for ``queues`` while it waits, renewed before
        it lapses, so that a single new task wakes it alone; one that is not open (busy)
        withdraws its offer, so that such tasks wake a worker that can start them."""
        listener = self._ensure_listener()
        seen = self._seen_at_claim
        since = seen[1] if seen is not None and seen[0] is listener else listener.mark()
        offering = waiter.worker_id if waiter is not None and waiter.open else None
        if waiter is not None and offering is None:
            await self._withdraw(waiter.worker_id)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0 and not listener.changed(since, queues):
            if offering is not None:
                renew_at = await self._offer(offering, queues, listener.private)
                left = min(left, max(0.0, renew_at - time.monotonic()))
            await listener.wait(since, queues, left)
        return []

    async def withdraw(self, queues: Sequence[str], waiter: base.Waiter
                       ) -> list[base.ClaimedTask]:
        """Drops the worker's offers (it stops). No task is ever handed over here."""
        await self._withdraw(waiter.worker_id)
        return []

    async def _offer(self, worker_id: str, queues: Sequence[str], channel: str) -> float:
        """Offer (or renew the offer) to take a single task of ``queues``, unless the offer
        held is still good; returns when (monotonic time) to renew it. A failure is logged and
        costs only the targeting: enqueues then notify every worker, as without offers."""
        held = self._offers.get(worker_id)
        if held is not None and held[:2] == (tuple(queues), channel) \
                and time.monotonic() < held[2]:
            return held[2]
        try:
            pool = await self._async_pool()
            await self._arun(pool, plans.offer(worker_id, queues, channel, OFFER_SECONDS,
                                               self._now()))
        except Exception as exc:
            log.warning("postgresql %s: offering to take work failed: %s", self._where, exc)
            return float("inf")  # not again in this wait
        renew_at = time.monotonic() + OFFER_SECONDS - OFFER_RENEW_MARGIN_SECONDS
        self._offers[worker_id] = (tuple(queues), channel, renew_at)
        return renew_at

    async def _withdraw(self, worker_id: str) -> None:
        """Drops the worker's offers, if it holds any (a failure leaves them to lapse)."""
        if self._offers.pop(worker_id, None) is None:
            return
        try:
            pool = await self._async_pool()
            await self._arun(pool, plans.withdraw(worker_id))
        except Exception as exc:
            log.warning("postgresql %s: withdrawing an offer failed: %s", self._where, exc)

    async def wait_for_urgent(self, queues: Sequence[str], timeout: float) -> int | None:
        """No urgent announcements here (``signals_priority`` is false): the worker claims
        urgent work on its own. Sleeps ``timeout``."""
        await asyncio.sleep(max(0.0, timeout))
        return None

    def declare_queue(self, queue: str, partitions: int = 1) -> None:
        """Partitions spread a queue over Redis Cluster shards: one database has nothing to
        spread over, so they are accepted and ignored."""

    def wait_for_change(self, timeout: float) -> None:
        """Polls the cluster's next transaction id (moves on any committed write) and this
        backend's own commits; may wake for a write elsewhere in the cluster."""
        deadline = time.monotonic() + timeout
        start = self._change_mark()
        while (remaining := deadline - time.monotonic()) > 0:
            time.sleep(min(CHANGE_POLL_SECONDS, remaining))
            if self._change_mark() != start:
                return

    # -- schema ----------------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply pending migrations now; returns the versions applied (``conveyor migrate``)."""
        with self._unavailable(), self._connect() as conn:
            applied = schema.migrate(conn)
        self._schema_ready = True
        return applied

    def pending_migrations(self) -> list[int]:
        with self._unavailable(), self._connect() as conn:
            return schema.pending(conn)

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._forget_inherited()
                return
            pool, self._pool = self._pool, None
            loop_pools, self._loop_pools = self._loop_pools, {}
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
        if pool is not None:
            pool.close()
        for entry in loop_pools.values():
            _close_on_its_loop(entry)

    async def warm_up(self, connections: int) -> None:
        """Nothing opened ahead: the pool hands its connections out in turn, so eight open
        ones would spread an idle worker's statements over eight server processes instead of
        the one or two it uses. Tried on the pickup workload, it moved nothing beyond the
        noise, and a worker's first batch here waits on its claims' commits, not on a
        handshake."""

    async def upkeep(self) -> None:
        """VACUUM the tables ``prune_bloated.sql`` names. ``SKIP_LOCKED``: when another worker
        is vacuuming a table already, this one moves on instead of waiting for it; a plain
        VACUUM takes no lock that claims or completions wait for."""
        pool = await self._async_pool()
        with self._unavailable():
            async with pool.connection() as conn:
                cursor = await conn.execute(plans.QUERIES["prune_bloated"])
                for (table,) in await cursor.fetchall():
                    await conn.execute(sql.SQL("VACUUM (SKIP_LOCKED, ANALYZE) {}").format(
                        sql.Identifier(table)))

    async def release_loop(self) -> None:
        loop = asyncio.get_running_loop()
        entry = self._loop_pools.pop(loop, None)
        if entry is not None and entry.ready.done() and entry.ready.exception() is None:
            await entry.ready.result().close()
            if entry.keeper is not None:
                await entry.keeper.aclose()
        dropped = [task for task in self._closing if task.get_loop() is loop]
        await asyncio.gather(*dropped, return_exceptions=True)

    async def aclose(self) -> None:
        """Close, awaiting the pool of the running loop (others are closed as :meth:`close`)."""
        await self.release_loop()
        self.close()

    # -- internals -------------------------------------------------------------------------------

    def _spec(self, op: base.Transition[Any], own: bool = False) -> plans.Spec:
        """``own``: on one of the backend's connections (a bulk enqueue may then use COPY)."""
        spec = plans.spec_for(op) if own else plans.SPECS.get(type(op))
        if spec is None:
            raise NotImplementedError(f"{type(op).__name__} is not supported by PostgresBackend")
        return spec

    def _now(self) -> float | None:
        return None if self.clock is None else self.clock()

    @contextlib.contextmanager
    def _unavailable(self) -> Iterator[None]:
        """Connection failures become BackendUnavailable; SQL errors stay what they are."""
        try:
            yield
        except PoolTimeout as exc:
            raise BackendUnavailable(f"PostgreSQL at {self._where}: {exc}") from exc
        except psycopg.OperationalError as exc:
            if type(exc) is not psycopg.OperationalError:
                raise
            raise BackendUnavailable(f"PostgreSQL at {self._where}: {exc}") from exc

    # psycopg_pool re-creates lost connections on its own backoff (1, 2, 4, 8 s...), so after an
    # outage a pool can keep its process away from the server for seconds after it is back. A
    # pool that failed a call is dropped instead; the next call opens a fresh one, which tries at
    # once and gives up after REOPEN_TIMEOUT, so the caller's own retry decides the cadence.
    # Calls still running on the old pool finish there; it closes when they are done.

    def _drop_sync_pool(self, broken: ConnectionPool) -> None:
        with self._lock:
            if self._pool is not broken:
                return
            self._pool = None
            self._reopening = True
        threading.Thread(target=broken.close, name="conveyor-pool-close", daemon=True).start()

    def _drop_async_pool(self, broken: AsyncConnectionPool) -> None:
        loop = asyncio.get_running_loop()
        entry = self._loop_pools.get(loop)
        if (entry is None or not entry.ready.done() or entry.ready.exception() is not None
                or entry.ready.result() is not broken):
            return
        del self._loop_pools[loop]
        self._reopening = True
        closing = loop.create_task(broken.close())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    def _open_timeout(self) -> float:
        return min(self._timeout, REOPEN_TIMEOUT) if self._reopening else self._timeout

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, **self._session,
                               connect_timeout=max(1, round(self._timeout)))

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._forget_inherited()

    def _forget_inherited(self) -> None:
        """After fork: the parent's pools, threads and sockets are not ours. Dropped, never
        closed (closing would end the parent's sessions); psycopg does not close a connection
        it collects in another process."""
        self._pool = None
        self._loop_pools = {}
        self._listener = None
        self._seen_at_claim = None
        self._offers = {}  # the parent's, naming the parent's listener
        self._lock = threading.RLock()
        self._pid = os.getpid()

    def _ensure_schema(self, conn: psycopg.Connection[Any] | None = None) -> None:
        """Once per backend: migrate (or check) on ``conn``, or on a connection of its own."""
        if self._schema_ready:
            return
        with self._lock:
            if self._schema_ready:
                return
            with self._unavailable(), contextlib.ExitStack() as stack:
                if conn is None:
                    conn = stack.enter_context(self._connect())
                if self._migrate:
                    schema.migrate(conn)
                else:
                    schema.check(conn)
            self._schema_ready = True

    def _sync_pool(self) -> ConnectionPool:
        self._check_fork()
        pool = self._pool
        if pool is not None:
            return pool
        with self._lock:
            if self._pool is None:
                pool = ConnectionPool(
                    self.url, min_size=self._min_size, max_size=self._max_size, open=False,
                    kwargs=self._session, name="conveyor", timeout=self._timeout,
                )
                with self._unavailable():
                    try:
                        pool.open(wait=True, timeout=self._open_timeout())
                        with pool.connection() as conn:
                            self._ensure_schema(conn)
                    except BaseException:
                        pool.close()
                        raise
                self._pool = pool
                self._reopening = False
            return self._pool

    async def _async_pool(self) -> AsyncConnectionPool:
        """The pool of the running loop, opened by its first caller (the others await it)."""
        self._check_fork()
        loop = asyncio.get_running_loop()
        entry = self._loop_pools.get(loop)
        if entry is not None:
            if entry.ready.done():
                return entry.ready.result()
            return await asyncio.shield(entry.ready)
        for other in [lp for lp in self._loop_pools.values() if lp.loop.is_closed()]:
            del self._loop_pools[other.loop]  # its loop closed it at shutdown, or it leaks to GC
        entry = self._loop_pools[loop] = _LoopPool(loop, loop.create_future())
        try:
            if not self._schema_ready:
                await asyncio.to_thread(self._ensure_schema)
            pool = AsyncConnectionPool(
                self.url, min_size=self._min_size, max_size=self._max_size, open=False,
                kwargs=self._session, name="conveyor-async", timeout=self._timeout,
            )
            with self._unavailable():
                try:
                    await pool.open(wait=True, timeout=self._open_timeout())
                except BaseException:
                    await pool.close()
                    raise
        except BaseException as exc:
            self._loop_pools.pop(loop, None)
            entry.ready.set_exception(exc)
            entry.ready.exception()  # retrieved: only the awaiting callers need to see it
            raise
        self._reopening = False
        entry.keeper = _closed_at_loop_shutdown(pool)
        await entry.keeper.__anext__()
        entry.ready.set_result(pool)
        return pool

    def _ensure_listener(self) -> Listener:
        """Connected synchronously the first time, so its LISTEN is in effect before the caller
        claims or waits (a few milliseconds, once per process)."""
        self._check_fork()
        listener = self._listener
        if listener is not None and listener.alive:
            return listener
        with self._lock:
            if self._listener is None or not self._listener.alive:
                listener = Listener(self.url, plans.NOTIFY_CHANNEL)
                with self._unavailable():
                    listener.start()
                self._listener = listener
            return self._listener

    def _before_claim(self) -> None:
        """What arrives after this instant wakes the next :meth:`wait_for_work`."""
        listener = self._ensure_listener()
        self._seen_at_claim = (listener, listener.mark())

    def _change_mark(self) -> tuple[int, str]:
        with self._unavailable(), self._sync_pool().connection() as conn:
            row = conn.execute(CHANGE_MARK_SQL).fetchone()
        return self._local_commits, str(row[0] if row else "")


class _Rollback(Exception):
    """Raised inside a transactional task's transaction to roll it back (lease lost)."""


async def _closed_at_loop_shutdown(pool: AsyncConnectionPool) -> AsyncGenerator[None, None]:
    """An async generator that the loop finalizes in ``shutdown_asyncgens()`` (``asyncio.run``
    does so): the last moment at which the pool's own loop can still close it."""
    try:
        yield
    finally:
        await pool.close()


def _close_on_its_loop(entry: _LoopPool) -> None:
    """Close a loop's pool from sync code, as far as that loop's state allows."""
    loop = entry.loop
    if loop.is_closed() or not entry.ready.done() or entry.ready.exception() is not None:
        return
    pool = entry.ready.result()
    if loop.is_running():
        with contextlib.suppress(RuntimeError):
            if _running_loop() is loop:
                loop.create_task(pool.close())
            else:
                asyncio.run_coroutine_threadsafe(pool.close(), loop)
        return
    loop.run_until_complete(pool.close())


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def session_settings(url: str) -> dict[str, Any]:
    """Connection settings of the backend's own sessions: autocommit, and commits that wait
    for their WAL flush whatever the role's or database's ``synchronous_commit`` says, so
    that an enqueue or a completion acknowledged is on disk (a claim relaxes it for its own
    transaction). Set at connection start, with whatever ``options`` the URL carries."""
    given = pg_conninfo.conninfo_to_dict(url).get("options") or ""
    return {"autocommit": True, "options": f"{given} -c synchronous_commit=on".strip()}
