"""The peers, and the plugin point for adding one.

A peer is two things:

1. an entry in ``PEERS`` below (read by ``run.py`` in Conveyor's virtualenv, so plain data):
   its backend, the pip requirements of its private virtualenv, or an interpreter to use
   instead (Conveyor's own);
2. a module ``adapters/<name>.py`` (imported only inside that virtualenv, by the producer and
   by the workers) with:

   - ``SETTINGS``: the worker settings in words, printed beside the figures;
   - ``worker_commands(url, record, workload) -> list[harness.Command]``: the worker processes;
   - ``Producer``: a ``harness.Producer`` / ``harness.AsyncProducer`` subclass (enqueue, bulk,
     delayed, priority);
   - optionally ``prepare(url)``: create the schema of a fresh database.

The task handler of every adapter calls ``adapters._record.append(number, ref)`` and nothing
else; the URL comes from ``adapters._record.url()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
CONVEYOR_PYTHON = REPO / ".venv" / "bin" / "python"


@dataclass(frozen=True)
class Peer:
    name: str
    label: str
    backend: str  # "redis", "postgres" or "sqlite": which private service a run needs
    requirements: tuple[str, ...] = ()
    python: Path | None = None  # an existing interpreter instead of a private virtualenv
    probe_scheme: str = ""  # for Conveyor: the URL scheme its backends must accept


PEERS: dict[str, Peer] = {peer.name: peer for peer in (
    Peer("huey", "huey 3.5.4", "redis", ("huey==3.5.4", "redis")),
    Peer("celery", "celery 5.7.0", "redis", ("celery[redis]==5.7.0",)),
    Peer("rq", "rq 3.0.0", "redis", ("rq==3.0.0",)),
    Peer("dramatiq", "dramatiq 2.2.1", "redis", ("dramatiq[redis]==2.2.1",)),
    Peer("arq", "arq 0.25.0", "redis", ("arq==0.25.0",)),
    Peer("taskiq", "taskiq 0.13.0", "redis", ("taskiq==0.13.0", "taskiq-redis==1.2.4")),
    # saq 0.26.4 imports typing_extensions without declaring it.
    Peer("saq", "saq 0.26.4", "redis", ("saq[redis]==0.26.4", "typing_extensions")),
    Peer("streaq", "streaq 7.2.0", "redis", ("streaq==7.2.0",)),
    # pgqueuer 1.6.0's CLI breaks on typer 0.29 (log level passed as str): keep an older typer.
    Peer("pgqueuer", "pgqueuer 1.6.0", "postgres", ("pgqueuer[asyncpg]==1.6.0", "typer<0.21")),
    Peer("procrastinate", "procrastinate 3.10.0", "postgres",
         ("procrastinate==3.10.0", "psycopg[binary]")),
    Peer("conveyor_sqlite", "conveyor", "sqlite", python=CONVEYOR_PYTHON,
         probe_scheme="sqlite"),
    Peer("conveyor_redis", "conveyor", "redis", python=CONVEYOR_PYTHON, probe_scheme="redis"),
    Peer("conveyor_postgres", "conveyor", "postgres", python=CONVEYOR_PYTHON,
         probe_scheme="postgresql"),
)}

REFERENCES = {"redis": "huey", "postgres": "pgqueuer"}
"""The peer each backend's ratios are taken against, measured in the same run."""
