"""Calls on one server sent straight over a pooled connection: the paths a pickup waits on.

redis-py 8's ``execute_command`` wraps every command in layers a script call does not need
here: a deprecation check of its arguments, observability recorders, a retry closure, and a
second pass over the arguments before hiredis packs them. Measured on the benchmark machine
(2026-11-25), a trivial ``EVALSHA`` took 137 us through ``client.evalsha`` and 95 us through
this path at the median; a producer's single enqueue, called every 5 ms (its caches cold, as
in the pickup workload), 0.86-1.09 ms against 0.83-0.97 ms. The bytes sent are the same
(hiredis packs them, as redis-py does), on a connection of the same pool, read by the same
parser.

A waiting worker's offer and its ``BLPOP`` go out together the same way
(:func:`offer_and_pop`): through a redis-py pipeline that round trip took 362-387 us of
Python and network, hot, against 193 us here, and the part after the reply lies between an
enqueue and the start of its task. (A worker that runs its tasks in threads waits in one of
them instead, on a connection of its own: see :mod:`held`.)

Only a first try goes this way. A connection error or timeout closes the connection, and the
caller falls back to redis-py's own call with its retries and back-off: a fault costs one try
more, and nothing else changes. A script's error (``ResponseError``) is a whole reply, so the
connection stays usable.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import hiredis
import redis
import redis.asyncio
from redis.exceptions import ResponseError

from conveyor.backends.redis.calls import Arg


def evalsha(client: redis.Redis, sha: str, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
    pool = client.connection_pool
    conn: Any = pool.get_connection()
    try:
        conn.send_packed_command([evalsha_packed(sha, keys, args)])
        return conn.read_response()
    except ResponseError:
        raise
    except BaseException:
        conn.disconnect()  # a reply half read must never reach the connection's next user
        raise
    finally:
        pool.release(conn)


def evalsha_packed(sha: str, keys: Sequence[Arg], args: Sequence[Arg]) -> bytes:
    command: Any = ("EVALSHA", sha, len(keys), *keys, *args)  # hiredis's stub wants 1-tuples
    packed: bytes = hiredis.pack_command(command)
    return packed


async def offer_and_pop(client: redis.asyncio.Redis, sha: str, keys: Sequence[Arg],
                        args: Sequence[Arg], watched: Sequence[str], seconds: float
                        ) -> tuple[Any, Any]:
    """``EVALSHA`` (the offer) and ``BLPOP watched seconds`` in one write. Returns the
    script's reply, or its error as a value (the pop's reply must be read either way), and the
    pop's. Cancelled or failed half way, the connection is closed: its pop may still be
    blocking in the server."""
    pool = client.connection_pool
    conn: Any = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        pop: Any = ("BLPOP", *watched, seconds)
        await conn.send_packed_command([evalsha_packed(sha, keys, args),
                                        hiredis.pack_command(pop)])
        try:
            offered = await conn.read_response()
        except ResponseError as exc:
            offered = exc
        popped = await conn.read_response()
    except ResponseError:
        raise
    except BaseException:
        with contextlib.suppress(Exception):
            await conn.disconnect(nowait=True)
        raise
    finally:
        await pool.release(conn)
    return offered, popped
