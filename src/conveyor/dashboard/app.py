"""The dashboard as one ASGI app: pages, ``/static``, and the JSON API under ``/api``.

It can run alone (``conveyor dashboard``) or be mounted in a host's Starlette or FastAPI app::

    from conveyor.dashboard import create_app
    host.mount("/conveyor", create_app(app, auth=my_check))

Every link it renders starts with the mount's ``root_path``, so it works under any prefix.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from conveyor.app import Conveyor
from conveyor.dashboard import api, pages
from conveyor.dashboard.context import Dashboard, json_error
from conveyor.dashboard.events import DEFAULT_MAX_STREAMS, Streams
from conveyor.dashboard.security import (
    AuthHook,
    AuthMiddleware,
    Csrf,
    SecurityHeadersMiddleware,
)

HERE = Path(__file__).parent


def create_app(
    app: Conveyor,
    *,
    auth: AuthHook | None = None,
    read_only: bool = False,
    secret: bytes | None = None,
    poll_seconds: float = 1.0,
    max_streams: int = DEFAULT_MAX_STREAMS,
) -> Starlette:
    """The dashboard of ``app``.

    ``auth`` is called with every request (pages, static files, API) and returns True (or an
    awaitable of it) to let it through; without it the dashboard is open, which only
    ``conveyor dashboard`` on a loopback address should allow. ``read_only`` hides every
    button and refuses every POST. ``secret`` signs CSRF tokens (a random one per process by
    default; give several processes behind one address the same). ``poll_seconds`` is how
    often each live page's event stream reads the stats; at most ``max_streams`` streams are
    open at once (past that, pages poll every ``poll_seconds`` instead).
    """
    templates = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates.filters.update(pages.FILTERS)
    middleware = [Middleware(SecurityHeadersMiddleware)]
    if auth is not None:
        middleware.append(Middleware(AuthMiddleware, hook=auth))
    dashboard = Starlette(
        routes=[
            *api.routes(),
            Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
            *pages.routes(),
        ],
        middleware=middleware,
        exception_handlers={HTTPException: _http_error},
    )
    dashboard.state.conveyor_dashboard = Dashboard(
        app=app, read_only=read_only, csrf=Csrf(secret), templates=templates,
        poll_seconds=poll_seconds, streams=Streams(max_streams),
    )
    return dashboard


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods: JSON under the API, plain text elsewhere."""
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith(f"{request.scope.get('root_path', '')}/api/"):
        return json_error(exc.status_code, exc.detail)
    return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
