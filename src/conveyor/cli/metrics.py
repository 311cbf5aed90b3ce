"""``conveyor metrics``: serve the cluster-wide Prometheus exposition at ``/metrics``."""

from __future__ import annotations

import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import click
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from conveyor.cli.common import EXIT_UNAVAILABLE, EXIT_USAGE, CliError, CliState, pass_state
from conveyor.metrics.prometheus import registry

log = logging.getLogger("conveyor.metrics")


def make_server(reg: CollectorRegistry, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] not in ("/metrics", "/metrics/"):
                self._reply(404, b"not found: try /metrics\n", "text/plain")
                return
            try:
                body = generate_latest(reg)
            except Exception as exc:
                self._reply(503, f"backend unreachable: {exc}\n".encode(), "text/plain")
                return
            self._reply(200, body, CONTENT_TYPE_LATEST)

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

    return ThreadingHTTPServer((host, port), Handler)


@click.command(short_help="Serve Prometheus metrics at /metrics.")
@click.argument("app_spec", required=False, metavar="MODULE:APP")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=9808, show_default=True)
@pass_state
def metrics(state: CliState, app_spec: str | None, host: str, port: int) -> None:
    """Serve the cluster-wide metrics of MODULE:APP's backend (queue depth, workers, task
    counters and latency histograms) in the Prometheus text format at /metrics. One exporter
    is enough for the whole cluster: every figure is read from the backend at scrape time."""
    app = state.app(spec=app_spec) if app_spec else state.app()
    reg = registry(app)
    try:
        server = make_server(reg, host, port)
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc}", EXIT_USAGE) from None
    try:
        generate_latest(reg)
    except Exception as exc:
        server.server_close()
        raise CliError(f"backend unreachable: {exc}", EXIT_UNAVAILABLE) from None
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    bound_port = server.server_address[1]
    click.echo(f"serving Prometheus metrics at http://{host}:{bound_port}/metrics", err=True)
    stop.wait()
    server.shutdown()
    server.server_close()
