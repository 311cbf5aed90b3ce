"""The app the dashboard tests serve, in-process and through ``conveyor dashboard``.

The URL comes from CONVEYOR_URL, so a test and the server process it starts share one store.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from conveyor import Conveyor

app = Conveyor(os.environ.get("CONVEYOR_URL", "sqlite:///test-dashboard.db"), lease=10.0)


@app.task(queue="email")
def send(to: str, subject: str = "hi") -> str:
    return f"sent {subject} to {to}"


@app.task(queue="email", max_retries=0)
def bounce(to: str) -> None:
    raise RuntimeError(f"mailbox of {to} is full")


@app.task(queue="reports")
def build(day: str) -> dict[str, str]:
    return {"day": day, "status": "ok"}


@app.cron("0 3 * * *", name="nightly", queue="reports")
def nightly() -> str:
    return "done"


@app.task(queue="slow")
def hold(path: str, seconds: float = 30.0) -> None:
    """Runs until ``path`` exists (at most ``seconds``): a busy slot for as long as a test needs."""
    deadline = time.monotonic() + seconds
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
