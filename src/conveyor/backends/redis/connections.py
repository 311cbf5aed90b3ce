"""The async client's connection class: hiredis packing, and no server-closed connection handed
out of the pool.

A pooled connection can sit idle while its peer goes away: a proxy or load balancer drops it, a
partition's far side resets it, the server restarts. redis-py's pool checks a connection as it
hands it out and replaces one that reports data or a closed stream. redis-py 8 turned that check
off for RESP3 connections with maintenance notifications in "auto" mode, which is its default
(it lets pending push messages through), and its asyncio connections report a closed stream
as "has data", never as closed (reported and fixed upstream in redis/redis-py#4260, after 8.1.0). So
every connection that was idle when the link broke failed its next command once with
"Connection closed by server", whenever it next left the pool: seconds after the link healed,
when a burst of concurrent calls reached the connections at the bottom of the pool. Here a
connection whose stream saw the peer close (EOF, or a reset) says so at that check, which
makes the pool reconnect it before the command is sent, as it did before redis-py 8.
"""

from __future__ import annotations

import functools
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError

from conveyor.backends.redis.packing import hiredis_packing


@functools.cache
def async_connection_class(connection_class: type[Any]) -> type[Any]:
    """``connection_class`` (an async redis-py connection class), packing with hiredis when it
    is installed, and reporting a peer-closed stream as closed when the pool checks it."""

    class LivenessChecked(hiredis_packing(connection_class)):  # type: ignore[misc]
        async def can_read(self) -> bool:
            reader = getattr(self, "_reader", None)
            if reader is not None and (reader.at_eof() or reader.exception() is not None):
                raise RedisConnectionError("Connection closed by server.")
            return await super().can_read()  # type: ignore[no-any-return]

    LivenessChecked.__name__ = LivenessChecked.__qualname__ = (
        f"LivenessChecked{connection_class.__name__}")
    return LivenessChecked


def use_async_connections(client: Any) -> Any:
    """Make the connections ``client``'s pool opens from now on those of
    :func:`async_connection_class`."""
    pool = client.connection_pool
    pool.connection_class = async_connection_class(pool.connection_class)
    return client
