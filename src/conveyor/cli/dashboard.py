"""``conveyor dashboard``: serve the web dashboard with uvicorn.

On a loopback address it may run open. On any other address it refuses to start (exit 2)
unless ``CONVEYOR_DASHBOARD_USER`` and ``CONVEYOR_DASHBOARD_PASSWORD`` are set, and then every
page, static file and API call needs them (HTTP basic auth). Set, they are required on loopback
too.
"""

from __future__ import annotations

import os

import click

from conveyor.cli.common import EXIT_USAGE, CliError, CliState, pass_state

USER_ENV = "CONVEYOR_DASHBOARD_USER"
PASSWORD_ENV = "CONVEYOR_DASHBOARD_PASSWORD"


@click.command(short_help="Serve the web dashboard (loopback only, unless credentials are set).")
@click.argument("app_spec", required=False, metavar="MODULE:APP")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Any non-loopback address needs "
                   f"{USER_ENV} and {PASSWORD_ENV}.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--read-only", is_flag=True, help="Hide every button and refuse every POST.")
@click.option("--root-path", default="", help="URL prefix when served behind a proxy.")
@click.option("--poll-seconds", type=click.FloatRange(min=0.2), default=1.0, show_default=True,
              help="How often open pages' live numbers are read (server-sent events, or "
                   "polling when a page cannot keep a stream).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
@pass_state
def dashboard(state: CliState, app_spec: str | None, host: str, port: int, read_only: bool,
              root_path: str, poll_seconds: float, log_level: str) -> None:
    """Serve the dashboard of MODULE:APP (or of the backend at --url) on HOST:PORT."""
    try:
        import uvicorn

        from conveyor.dashboard import BasicAuth, create_app, is_loopback
    except ImportError as exc:
        raise CliError(f"the dashboard needs its extra: pip install 'conveyor[dashboard]' "
                       f"({exc.name} is missing)", EXIT_USAGE) from None
    user = os.environ.get(USER_ENV, "")
    password = os.environ.get(PASSWORD_ENV, "")
    if bool(user) != bool(password):
        raise CliError(f"set both {USER_ENV} and {PASSWORD_ENV}, or neither", EXIT_USAGE)
    if not is_loopback(host) and not user:
        raise CliError(
            f"refusing to serve the dashboard on {host} without credentials: set {USER_ENV} "
            f"and {PASSWORD_ENV} (every page and API call then requires them), or bind to "
            f"127.0.0.1", EXIT_USAGE)
    app = state.app(spec=app_spec)
    asgi = create_app(app, auth=BasicAuth(user, password) if user else None,
                      read_only=read_only, poll_seconds=poll_seconds)
    click.echo(f"Conveyor dashboard on http://{host}:{port}{root_path}/ "
               f"({'basic auth' if user else 'open: loopback only'}"
               f"{', read-only' if read_only else ''})", err=True)
    uvicorn.run(asgi, host=host, port=port, root_path=root_path, log_level=log_level,
                access_log=log_level == "debug")
