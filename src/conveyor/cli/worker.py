"""``conveyor worker``: one worker in this process, or N under a supervisor."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading

import click

from conveyor.app import Conveyor
from conveyor.backends.base import Now
from conveyor.cli.common import EXIT_USAGE, CliError, CliState, pass_state
from conveyor.worker.supervisor import SUPERVISOR_PID_ENV, Supervisor
from conveyor.worker.worker import Worker

PARENT_CHECK_SECONDS = 1.0
LOG_LEVELS = ("debug", "info", "warning", "error")


@click.command(short_help="Run tasks of MODULE:APP, in one process or N.")
@click.argument("app_spec", required=False, metavar="MODULE:APP")
@click.option("--queue", "-q", "queues", multiple=True,
              help="Queue to serve, repeatable (default: every queue of the app's tasks).")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=10, show_default=True,
              help="Tasks run at once per process.")
@click.option("--processes", "-P", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes; more than 1 runs them under a supervisor.")
@click.option("--prefetch", type=click.IntRange(min=0), default=None,
              help="Tasks claimed ahead of free slots (default: concurrency; 0 for long tasks).")
@click.option("--claim-batch", type=click.IntRange(min=1), default=None,
              help="Most tasks one claim takes (default: the backend's, 32 on Redis).")
@click.option("--pool", type=click.Choice(["thread", "process"]), default="thread",
              show_default=True, help="Where plain `def` tasks run.")
@click.option("--burst", is_flag=True, help="Exit once no task is due.")
@click.option("--scheduler", is_flag=True,
              help="Also run the cron scheduler here (any number may; one leads).")
@click.option("--grace", type=click.FloatRange(min=0), default=25.0, show_default=True,
              help="Seconds running tasks get to finish after SIGTERM.")
@click.option("--url", metavar="URL", envvar="CONVEYOR_URL",
              help="Backend URL (overrides the app's).")
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False), default="info",
              show_default=True)
@pass_state
def worker(state: CliState, app_spec: str | None, queues: tuple[str, ...], concurrency: int,
           processes: int, prefetch: int | None, claim_batch: int | None, pool: str,
           burst: bool, scheduler: bool, grace: float, url: str | None, log_level: str) -> None:
    """Run tasks of MODULE:APP (or --app) until SIGTERM / Ctrl-C (a second one: cold stop).

    Exit code 0 after a clean stop, 1 if running tasks had to be abandoned after the grace
    period, 2 for a usage or import error, 3 if the backend is unreachable.
    """
    _configure_logging(log_level)
    spec = app_spec or state.app_spec
    if not spec:
        raise CliError("worker needs the app: conveyor worker MODULE:APP (or --app / "
                       "CONVEYOR_APP)", EXIT_USAGE)
    url = url or state.url
    app = state.app(spec=spec, url=url)
    ctx = click.get_current_context()
    if processes == 1:
        w = app.worker(list(queues) or None, concurrency=concurrency, prefetch=prefetch,
                       claim_batch=claim_batch, pool=pool, burst=burst, grace=grace,
                       scheduler=scheduler)
        ctx.exit(asyncio.run(_serve(w)))
    _check_backend(app)
    command = [sys.executable, "-m", "conveyor", "worker", spec, "--processes", "1",
               "--concurrency", str(concurrency), "--pool", pool, "--grace", str(grace),
               "--log-level", log_level]
    for queue in queues:
        command += ["--queue", queue]
    if prefetch is not None:
        command += ["--prefetch", str(prefetch)]
    if claim_batch is not None:
        command += ["--claim-batch", str(claim_batch)]
    if burst:
        command.append("--burst")
    if scheduler:
        command.append("--scheduler")
    if url:
        command += ["--url", url]
    ctx.exit(Supervisor(command, processes, burst=burst, stop_timeout=grace + 15.0).run())


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    logging.getLogger("conveyor").setLevel(level.upper())


def _check_backend(app: Conveyor) -> None:
    """Fail once with exit code 3 here rather than let N children crash-loop on it."""
    try:
        app.backend.execute(Now())
    finally:
        app.close()


async def _serve(worker: Worker) -> int:
    """Signals are handled by the worker's own loop (warm, then cold stop); handlers can only be
    installed from the main thread, so an embedding caller in another thread stops it itself."""
    if threading.current_thread() is threading.main_thread():
        worker.install_signal_handlers()
    guard = None
    parent = os.environ.get(SUPERVISOR_PID_ENV)
    if parent and parent.isdigit():
        guard = asyncio.create_task(_stop_when_orphaned(worker, int(parent)))
    try:
        return await worker.arun()
    finally:
        if guard is not None:
            guard.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await guard
        await worker.app.backend.release_loop()  # this loop ends here


async def _stop_when_orphaned(worker: Worker, parent_pid: int) -> None:
    """A supervised child sits in its own process group, so no terminal signal reaches it if the
    supervisor is killed outright; noticing the new parent is the portable way to follow it."""
    while os.getppid() == parent_pid:  # noqa: ASYNC110 - no event exists for a parent's death
        await asyncio.sleep(PARENT_CHECK_SECONDS)
    logging.getLogger("conveyor.worker").warning(
        "supervisor (pid %d) is gone: stopping", parent_pid)
    worker.stop()
