"""The connection a worker's waiting thread holds for its blocking waits (``wait_in_thread``).

Everything between the server's reply and the task's start is pickup latency, so this path
reads its replies itself: one connection taken from the pool once and kept (no pool checkout
per wait), read with a hiredis reader of its own (none of redis-py's layers per reply), on a
socket in blocking mode whose timeout is the kernel's (``SO_RCVTIMEO``) rather than Python's,
which polls the socket before every read. Measured on the benchmark machine (2026-11-25, a
push every 5 ms, from the push to the popped value in a thread, p50): 90-112 us through a
pooled connection and redis-py's read, 92-101 us holding the connection, 83-84 us reading its
socket ourselves, 63-64 us on a blocking socket without Python's timeout.

redis-py still opens the connection (authentication, database, client name, TLS). A TLS socket
keeps Python's timeout and redis-py's read: its records are read by the ssl module.

A failure (a reset, a timeout, a reply cut short) closes the connection, and the next call
opens a fresh one: a reply half read never reaches a later call.
"""

from __future__ import annotations

import socket
import ssl
import struct
from typing import Any

import hiredis
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

BUFFER_BYTES = 65536


def _reply_error(message: str) -> ResponseError:
    """An error reply as redis-py names it (the backend reloads a script on NoScriptError)."""
    return NoScriptError(message) if message.startswith("NOSCRIPT") else ResponseError(message)


class HeldConnection:
    def __init__(self, client: redis.Redis, timeout_seconds: float) -> None:
        self.client = client
        self._timeout = timeout_seconds
        self._conn: Any = None
        self._sock: socket.socket | None = None
        self._reader = hiredis.Reader(replyError=_reply_error)
        self._buffer = bytearray(BUFFER_BYTES)

    def call(self, commands: list[bytes]) -> list[Any]:
        """Send packed ``commands`` in one write and return their replies in order (an error
        reply as a ``ResponseError`` value)."""
        conn = self._conn if self._conn is not None else self._open()
        try:
            conn.send_packed_command(commands, check_health=False)
            return [self._read(conn) for _ in commands]
        except BaseException:
            self.close()  # a pop may still be blocking in the server, a reply half read
            raise

    def _open(self) -> Any:
        conn: Any = self.client.connection_pool.get_connection()
        sock = getattr(conn, "_sock", None)
        if isinstance(sock, socket.socket) and not isinstance(sock, ssl.SSLSocket):
            seconds = int(self._timeout)
            limit = struct.pack("ll", seconds, int((self._timeout - seconds) * 1e6))
            sock.settimeout(None)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
            self._sock = sock
        self._reader = hiredis.Reader(replyError=_reply_error)
        self._conn = conn
        return conn

    def _read(self, conn: Any) -> Any:
        sock = self._sock
        if sock is None:  # TLS: redis-py reads
            try:
                return conn.read_response(disconnect_on_error=False)
            except ResponseError as exc:
                return exc
        reader = self._reader
        while (reply := reader.gets()) is False:
            try:
                count = sock.recv_into(self._buffer)
            except BlockingIOError:  # SO_RCVTIMEO ran out
                raise RedisTimeoutError("timeout reading from the waiting connection") from None
            except OSError as exc:
                raise RedisConnectionError(f"reading from the waiting connection: {exc}") from exc
            if count == 0:
                raise RedisConnectionError("the server closed the waiting connection")
            reader.feed(self._buffer, 0, count)  # type: ignore[arg-type]  # any buffer
        return reply

    def close(self) -> None:
        conn, self._conn, self._sock = self._conn, None, None
        if conn is not None:
            conn.disconnect()
            self.client.connection_pool.release(conn)
