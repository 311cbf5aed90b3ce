"""The live stream ``GET /api/events``: what it sends, who may open it, how many, and that a
client going away ends it (no generator, thread or slot left behind).

The stream never ends by itself, so these tests drive the ASGI app directly: they play the
server, hand it a ``receive`` that reports the disconnect when the test says so, and read what
it sends.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from starlette.requests import Request
from starlette.testclient import TestClient

from apps import dashboard_app
from conveyor import Conveyor
from conveyor.dashboard import BasicAuth, create_app
from conveyor.dashboard.events import CountedStream, Streams, stats_events
from conveyor.dashboard.models import StatsView
from conveyor.dashboard.service import stats_view

DEADLINE = 10.0


class Client:
    """One HTTP client of an ASGI app: its request, what came back, and a disconnect button."""

    def __init__(self, path: str = "/api/events", query: bytes = b"",
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": query, "root_path": "", "headers": headers or [],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
        }
        self.gone = asyncio.Event()
        self.requested = False
        self.status: int | None = None
        self.headers: dict[bytes, bytes] = {}
        self.body = b""
        self.changed = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        if not self.requested:
            self.requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = dict(message["headers"])
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")
        self.changed.set()

    def events(self) -> list[tuple[str, str]]:
        """(event, data) of every complete event so far."""
        found = []
        for block in self.body.replace(b"\r\n", b"\n").decode().split("\n\n")[:-1]:
            fields = [line.partition(":")[::2] for line in block.split("\n") if line]
            name = next((v.strip() for k, v in fields if k == "event"), "")
            data = "\n".join(v[1:] if v.startswith(" ") else v for k, v in fields if k == "data")
            if name:
                found.append((name, data))
        return found

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Wait for what the server sends until ``predicate`` holds (deadline: DEADLINE)."""
        async def wait() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(wait(), DEADLINE)


def _stats_events(client: Client) -> list[StatsView]:
    return [msgspec.json.decode(data, type=StatsView)
            for name, data in client.events() if name == "stats"]


async def _served_stats_then_left(asgi: Any, client: Client) -> None:
    """Serve one stream to ``client`` until it has a stats event, then hang up: the response
    must end with the client."""
    served = asyncio.create_task(asgi(client.scope, client.receive, client.send))
    await client.until(lambda: bool(_stats_events(client)))
    client.gone.set()
    await asyncio.wait_for(served, DEADLINE)


def _depth(view: StatsView, queue: str) -> int:
    return next(q.depth for q in view.queues if q.queue == queue)


def test_the_stream_sends_the_figures_then_each_change_and_ends_on_disconnect(
    app: Conveyor,
) -> None:
    asgi = create_app(app, poll_seconds=0.05)
    streams = asgi.state.conveyor_dashboard.streams

    async def scenario() -> None:
        client = Client(query=b"window=600")
        served = asyncio.create_task(asgi(client.scope, client.receive, client.send))
        await client.until(lambda: len(_stats_events(client)) >= 1)
        assert client.status == 200
        assert client.headers[b"content-type"].startswith(b"text/event-stream")
        assert client.headers[b"cache-control"] == b"no-store"
        assert b"retry: 3000" in client.body
        first = _stats_events(client)[0]
        assert _depth(first, "email") == 0
        assert streams.open == 1
        await asyncio.to_thread(dashboard_app.send.enqueue, "live@example.com")
        await client.until(lambda: _depth(_stats_events(client)[-1], "email") == 1)
        client.gone.set()
        await asyncio.wait_for(served, DEADLINE)  # the response ends with the client
        assert streams.open == 0

    asyncio.run(scenario())


def test_unchanged_figures_are_not_sent_again(app: Conveyor) -> None:
    """Reads go on each interval; an event goes out only when something changed."""
    reads = 0
    frozen = stats_view(app, read_only=False)

    def read() -> StatsView:
        nonlocal reads
        reads += 1
        return msgspec.structs.replace(frozen, generated_at=frozen.generated_at)

    async def scenario() -> None:
        streams = Streams(1)
        assert streams.try_open()
        response = CountedStream(stats_events(read, 0.01), streams, ping=1)
        client = Client()
        served = asyncio.create_task(response(client.scope, client.receive, client.send))
        await client.until(lambda: reads >= 5)
        client.gone.set()
        await asyncio.wait_for(served, DEADLINE)
        assert len(_stats_events(client)) == 1

    asyncio.run(scenario())


def test_a_disconnect_ends_the_generator_and_gives_the_slot_back(app: Conveyor) -> None:
    """The generator is closed (its frame gone), not left suspended for the garbage
    collector; no read runs after the response has ended."""
    reads = 0

    def read() -> StatsView:
        nonlocal reads
        reads += 1
        return stats_view(app, read_only=False)

    async def scenario() -> None:
        streams = Streams(1)
        assert streams.try_open()
        generator = stats_events(read, 0.01)
        response = CountedStream(generator, streams, ping=1)
        client = Client()
        served = asyncio.create_task(response(client.scope, client.receive, client.send))
        await client.until(lambda: reads >= 3)
        client.gone.set()
        await asyncio.wait_for(served, DEADLINE)
        assert generator.ag_frame is None  # finished: cancelled inside, not abandoned
        assert streams.open == 0 and streams.try_open()
        after = reads
        await asyncio.sleep(0)  # one more turn of the loop: nothing is scheduled to read
        assert reads == after

    asyncio.run(scenario())


def test_idle_streams_get_comment_pings(app: Conveyor) -> None:
    async def scenario() -> None:
        streams = Streams(1)
        assert streams.try_open()
        frozen = stats_view(app, read_only=False)
        response = CountedStream(stats_events(lambda: frozen, 0.05), streams, ping=0.05)
        client = Client()
        served = asyncio.create_task(response(client.scope, client.receive, client.send))
        await client.until(lambda: b"\n: ping" in b"\n" + client.body.replace(b"\r\n", b"\n"))
        client.gone.set()
        await asyncio.wait_for(served, DEADLINE)

    asyncio.run(scenario())


def test_streams_past_the_limit_are_refused_and_the_page_can_poll(app: Conveyor) -> None:
    asgi = create_app(app, poll_seconds=0.05, max_streams=1)
    streams = asgi.state.conveyor_dashboard.streams

    async def scenario() -> None:
        first = Client()
        served = asyncio.create_task(asgi(first.scope, first.receive, first.send))
        await first.until(lambda: bool(_stats_events(first)))
        second = Client()
        await asyncio.wait_for(asgi(second.scope, second.receive, second.send), DEADLINE)
        assert second.status == 503
        assert second.headers[b"content-type"] == b"application/json"
        assert json.loads(second.body)["status"] == 503
        first.gone.set()
        await asyncio.wait_for(served, DEADLINE)
        assert streams.open == 0
        third = Client()  # the slot is free again
        await _served_stats_then_left(asgi, third)

    asyncio.run(scenario())


def test_a_bad_window_is_400_and_takes_no_slot(app: Conveyor) -> None:
    asgi = create_app(app, max_streams=1)
    with TestClient(asgi) as client:
        response = client.get("/api/events?window=5")
        assert response.status_code == 400
        assert response.json()["status"] == 400
    assert asgi.state.conveyor_dashboard.streams.open == 0


def test_the_stream_needs_basic_auth_like_every_route(app: Conveyor) -> None:
    asgi = create_app(app, auth=BasicAuth("ops", "s3cret"), max_streams=1)
    with TestClient(asgi) as client:
        for auth in (None, ("ops", "wrong")):
            response = client.get("/api/events", auth=auth)
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Basic ")
    assert asgi.state.conveyor_dashboard.streams.open == 0

    async def scenario() -> None:
        client = Client(headers=[(b"authorization", b"Basic b3BzOnMzY3JldA==")])  # ops:s3cret
        await _served_stats_then_left(asgi, client)

    asyncio.run(scenario())


def test_the_stream_goes_through_the_auth_hook(app: Conveyor) -> None:
    seen: list[str] = []

    def staff_only(request: Request) -> bool:
        seen.append(request.url.path)
        return request.headers.get("x-role") == "staff"

    asgi = create_app(app, auth=staff_only)
    with TestClient(asgi) as client:
        assert client.get("/api/events").status_code == 401
    assert seen == ["/api/events"]

    async def scenario() -> None:
        client = Client(headers=[(b"x-role", b"staff")])
        await _served_stats_then_left(asgi, client)

    asyncio.run(scenario())


def test_the_stream_is_in_the_openapi_document(app: Conveyor) -> None:
    with TestClient(create_app(app)) as client:
        document = client.get("/api/openapi.json").json()
    operation = document["paths"]["/api/events"]["get"]
    assert operation["operationId"] == "streamEvents"
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert {"400", "401", "503"} <= set(operation["responses"])


@pytest.mark.parametrize("path", ["/", "/queues/email"])
def test_live_pages_point_their_script_at_the_stream(client: TestClient, path: str) -> None:
    script = client.get("/static/dashboard.js").text
    assert "new EventSource(" in script and "/api/events" in script
    assert client.get(path).status_code == 200
