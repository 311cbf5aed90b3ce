"""The worker's pipe to its lease keeper, read and written without ever blocking.

The worker and its keeper each write to the other and read what the other writes, over one
socket pair. With blocking writes both could fill it at the same moment and then wait on each
other for ever: a 200,000-task drain left both workers of the benchmark stuck that way, each
in ``send_bytes`` with a claim's leases while its keeper was in ``send_bytes`` with lost
reports, and neither read again. A blocking read is no better: a keeper waiting for the rest of
a message from a worker whose loop a task holds would stop extending, which is what it is for.
So each end queues what it sends, writes what the socket takes now and the rest when it is
writable again, and reads only what has arrived, a whole message at a time. Every call is
``MSG_DONTWAIT``: the descriptor's own mode is left alone.

Messages are framed as ``multiprocessing.connection.Connection`` frames them: a 4-byte
big-endian length, then the bytes.
"""

from __future__ import annotations

import socket
import struct
from collections import deque

_HEADER = struct.Struct("!i")
_CHUNK = 65536


class Pipe:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._frames: deque[bytes] = deque()
        self._sent = 0
        """Bytes of the first queued frame already written."""
        self._received = bytearray()

    def fileno(self) -> int:
        return self._sock.fileno()

    @property
    def pending(self) -> bool:
        """Whether queued bytes wait for the socket to be writable."""
        return bool(self._frames)

    def put(self, message: bytes, *, supersedes: bool = False) -> None:
        """Queue ``message`` (``flush`` writes it). ``supersedes``: it replaces every message
        queued and not begun (the worker's whole lease set does), so a keeper slow to read
        gets one set, not a backlog of them."""
        if supersedes:
            begun = [self._frames[0]] if self._sent else []
            self._frames.clear()
            self._frames.extend(begun)
        self._frames.append(_HEADER.pack(len(message)) + message)

    def send(self, message: bytes) -> None:
        """Queue ``message`` and write what the socket takes now. Raises OSError when the
        other end is gone."""
        self.put(message)
        self.flush()

    def flush(self) -> None:
        """Write what the socket takes now. Raises OSError when the other end is gone."""
        while self._frames:
            frame = self._frames[0]
            try:
                self._sent += self._sock.send(memoryview(frame)[self._sent:],
                                              socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            if self._sent == len(frame):
                self._frames.popleft()
                self._sent = 0

    def receive(self) -> list[bytes]:
        """The whole messages that have arrived (none if nothing has). Raises EOFError once
        the other end has closed."""
        while True:
            try:
                chunk = self._sock.recv(_CHUNK, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            if not chunk:
                raise EOFError("the other end of the lease keeper's pipe closed")
            self._received += chunk
            if len(chunk) < _CHUNK:
                break
        messages = []
        start = 0
        while len(self._received) - start >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._received, start)
            end = start + _HEADER.size + size
            if end > len(self._received):
                break
            messages.append(bytes(self._received[start + _HEADER.size:end]))
            start = end
        del self._received[:start]
        return messages

    def close(self) -> None:
        self._frames.clear()
        self._sock.close()
