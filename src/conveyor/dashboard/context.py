"""What every handler of one dashboard shares, and the JSON responses they send."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from conveyor.app import Conveyor
from conveyor.dashboard.events import Streams
from conveyor.dashboard.models import Error
from conveyor.dashboard.security import Csrf


@dataclass(frozen=True)
class Dashboard:
    app: Conveyor
    read_only: bool
    csrf: Csrf
    templates: jinja2.Environment
    poll_seconds: float
    """How often an event stream reads the stats (and how often pages poll without one)."""
    streams: Streams


def dashboard_of(request: Request) -> Dashboard:
    """The dashboard that serves this request (an inner Starlette app sets ``scope["app"]``
    to itself, also when mounted inside a host app)."""
    dashboard = request.app.state.conveyor_dashboard
    assert isinstance(dashboard, Dashboard)
    return dashboard


_encoder = msgspec.json.Encoder()


def json_response(value: Any, status: int = 200) -> Response:
    return Response(_encoder.encode(value), status_code=status, media_type="application/json")


def json_error(status: int, message: str) -> Response:
    return json_response(Error(error=message, status=status), status)
