"""Live updates by server-sent events: ``GET /api/events`` streams the overview's figures.

One stream per open page. Each stream reads the stats (the same :class:`StatsView` as
``GET /api/stats``) every ``interval`` seconds in a worker thread, so a slow backend never
blocks the event loop, and sends a ``stats`` event when the figures changed since the last one
it sent (the first read always goes out). In between, a comment line every ``ping`` seconds
keeps proxies from closing a quiet connection. sse-starlette writes the protocol and ends the
generator when the client goes away or the server shuts down.

Streams are counted per dashboard and bounded: past ``max_streams`` a new one is answered 503,
and the page falls back to polling. The count goes down when the response ends, whichever way
it ends (disconnect, shutdown, a backend error, a HEAD request that never starts the stream).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import anyio
import msgspec
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from conveyor.dashboard.models import StatsView

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_MAX_STREAMS = 32
PING_SECONDS = 15.0
RETRY_MILLISECONDS = 3000
"""How long a browser waits before it reconnects a dropped stream."""

_encoder = msgspec.json.Encoder()


class Streams:
    """How many event streams a dashboard has open, at most ``limit`` (thread-safe)."""

    def __init__(self, limit: int = DEFAULT_MAX_STREAMS) -> None:
        self.limit = limit
        self._open = 0
        self._lock = threading.Lock()

    @property
    def open(self) -> int:
        return self._open

    def try_open(self) -> bool:
        with self._lock:
            if self._open >= self.limit:
                return False
            self._open += 1
            return True

    def close(self) -> None:
        with self._lock:
            self._open -= 1


def _figures(view: StatsView) -> bytes:
    """The view without its timestamp: what "changed" compares."""
    return _encoder.encode(msgspec.structs.replace(view, generated_at=EPOCH))


async def stats_events(
    read: Callable[[], StatsView], interval: float
) -> AsyncIterator[ServerSentEvent]:
    """The events of one stream: forever, until sse-starlette cancels it."""
    last: bytes | None = None
    while True:
        view = await anyio.to_thread.run_sync(read)
        figures = _figures(view)
        if figures != last:
            last = figures
            yield ServerSentEvent(data=_encoder.encode(view).decode(), event="stats",
                                  retry=RETRY_MILLISECONDS)
        await anyio.sleep(interval)


class CountedStream(EventSourceResponse):
    """An event stream that gives its place in ``streams`` back when it ends."""

    def __init__(self, events: AsyncIterator[ServerSentEvent], streams: Streams,
                 ping: float) -> None:
        super().__init__(events, ping=ping, headers={"cache-control": "no-store"})
        self.streams = streams

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.streams.close()


def event_stream(
    read: Callable[[], StatsView], streams: Streams, interval: float,
    ping: float = PING_SECONDS,
) -> CountedStream:
    """The response of one stream; the caller has taken its place (``streams.try_open``)."""
    return CountedStream(stats_events(read, interval), streams, ping)
