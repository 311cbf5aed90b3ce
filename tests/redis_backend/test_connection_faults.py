"""A worker's connections to Redis across a partition that heals: the async client must be
back at once, not one failed call per connection it pooled before the cut.

A real redis-server behind the tests' own TCP proxy (``chaos.harness.TcpProxy``), which cuts
the link (closes every connection, turns new ones away) and heals it. Found by the partition
test: after an 8 s cut, the cut-off worker's calls still failed 4-7 s after the heal, with
"Connection closed by server", because the async client retried nothing and its pool handed
out connections the proxy had closed while they sat idle.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
import redis
from msgspec.structs import replace
from redis.exceptions import ResponseError

from backends.support import enqueue, new_task
from chaos.harness import TcpProxy
from conveyor.backends.base import Enqueue, Now, Waiter
from conveyor.backends.redis import keys
from conveyor.backends.redis.backend import RedisBackend
from helpers import wait_until

POOLED = 4


@pytest.fixture
def proxy(redis_url: str) -> Iterator[TcpProxy]:
    parts = urlsplit(redis_url)
    started = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 0).start()
    yield started
    started.close()


def via(proxy: TcpProxy, redis_url: str) -> str:
    return f"redis://127.0.0.1:{proxy.port}{urlsplit(redis_url).path}"


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` from the event loop (which keeps serving sockets meanwhile), sleeping
    before each look, so the loop has read its sockets once more when it returns."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        await asyncio.sleep(0.01)
        if predicate():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")


def test_a_call_made_during_a_cut_is_retried_and_succeeds_once_the_cut_heals(
    redis_url: str, proxy: TcpProxy
) -> None:
    backend = RedisBackend(via(proxy, redis_url), durability="none", connect_retries=20)

    async def main() -> None:
        await backend.aexecute(Now())
        proxy.set_mode("cut")
        call = asyncio.create_task(backend.aexecute(Now()))
        # Turned away twice: the call did not give up at its first connection error.
        await until(lambda: proxy.refused >= 2 or call.done())
        assert not call.done(), f"the call gave up at once: {call.exception()!r}"
        proxy.set_mode("pass")
        assert await asyncio.wait_for(call, 10.0) > 0

    try:
        asyncio.run(main())
    finally:
        backend.close()


def test_connections_closed_while_idle_in_the_pool_are_replaced_before_use(
    redis_url: str, proxy: TcpProxy
) -> None:
    # No retries: a pooled connection the peer closed must never carry a command at all.
    backend = RedisBackend(via(proxy, redis_url), durability="none", connect_retries=0)
    raw = redis.Redis.from_url(redis_url)
    alone = len(raw.client_list())  # this client's own connection

    async def main() -> None:
        await backend.aexecute(Now())
        # Several blocking pops at once leave several connections in the pool.
        await asyncio.gather(*(backend.wait_for_work([f"idle-{n}"], 0.3)
                               for n in range(POOLED)))
        assert len(raw.client_list()) >= alone + POOLED
        proxy.set_mode("cut")
        # The server saw every proxied connection close, so the client's ends got their EOF.
        await until(lambda: len(raw.client_list()) == alone)
        proxy.set_mode("pass")
        refused = proxy.refused
        # As many calls at once as there are pooled connections: each takes one of them.
        times = await asyncio.gather(*(backend.aexecute(Now()) for _ in range(POOLED + 1)),
                                     return_exceptions=True)
        failed = [t for t in times if isinstance(t, BaseException)]
        assert failed == [], f"calls on connections closed while pooled failed: {failed}"
        assert proxy.refused == refused

    try:
        asyncio.run(main())
    finally:
        raw.close()
        backend.close()


def test_a_sync_call_made_during_a_cut_is_retried_and_succeeds_once_the_cut_heals(
    redis_url: str, proxy: TcpProxy
) -> None:
    """The sync runner sends a script's first try straight over a pooled connection
    (``direct.py``); when that fails it must fall back to redis-py's retries, not give up."""
    backend = RedisBackend(via(proxy, redis_url), durability="none", connect_retries=20)
    try:
        backend.execute(Now())
        proxy.set_mode("cut")
        outcome: list[object] = []
        call = threading.Thread(target=lambda: outcome.append(backend.execute(Now())))
        call.start()
        wait_until(lambda: proxy.refused >= 2 or not call.is_alive(), timeout=10.0)
        assert call.is_alive(), f"the call gave up at once: {outcome}"
        proxy.set_mode("pass")
        call.join(10.0)
        assert not call.is_alive() and len(outcome) == 1 and float(outcome[0]) > 0  # type: ignore[arg-type]
    finally:
        proxy.set_mode("pass")
        backend.close()


def test_a_script_error_leaves_the_pooled_connection_usable(redis_url: str) -> None:
    """An error reply is a whole reply: the connection goes back to the pool as it was."""
    backend = RedisBackend(redis_url, durability="none", connect_retries=0)
    raw = redis.Redis.from_url(redis_url)
    try:
        backend.execute(Now())
        before = {c["id"] for c in raw.client_list()}
        first = new_task()
        with pytest.raises(ResponseError, match="duplicate task id"):
            backend.execute(Enqueue([first, replace(new_task(), id=first.id)]))
        assert backend.execute(Now()) > 0
        assert {c["id"] for c in raw.client_list()} == before, "no connection replaced"
    finally:
        raw.close()
        backend.close()


def test_a_waiting_worker_whose_connection_is_cut_offers_again_once_the_cut_heals(
    redis_url: str, proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    """The offer and the BLPOP go straight over a pooled connection (``direct.py``); cut
    under them, the wait falls back to redis-py's pipeline and its retries (a short cut is
    not worth a warning), then is handed the next task as if nothing had happened."""
    backend = RedisBackend(via(proxy, redis_url), durability="none", connect_retries=20)
    producer = RedisBackend(redis_url, durability="none")
    raw = redis.Redis.from_url(redis_url)
    waiter = Waiter("cut-worker", 30.0, open=True)
    offers = keys.queue_keys("default").idle

    async def main() -> list[str]:
        await backend.aexecute(Now())
        await backend.wait_for_work(["default"], 0.3, waiter)  # the offer script is loaded
        waiting = asyncio.create_task(backend.wait_for_work(["default"], 10.0, waiter))
        await until(lambda: raw.zcard(offers) == 1)
        raw.delete(offers)
        proxy.set_mode("cut")
        await until(lambda: proxy.refused >= 2)
        assert not waiting.done(), f"the wait gave up: {waiting}"
        proxy.set_mode("pass")
        await until(lambda: raw.zcard(offers) == 1)  # offered again, through the fallback
        task_id = (await asyncio.to_thread(enqueue, producer, new_task()))[0]
        handed = await asyncio.wait_for(waiting, 5.0)
        return [task_id, *(t.id for t in handed)]

    try:
        with caplog.at_level(logging.WARNING, logger="conveyor"):
            task_id, *handed = asyncio.run(main())
        assert handed == [task_id]
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    finally:
        proxy.set_mode("pass")
        raw.close()
        producer.close()
        backend.close()
