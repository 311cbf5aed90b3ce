"""An app with alert thresholds, for the monitoring commands. The URL comes from CONVEYOR_URL;
CONVEYOR_MAX_DEPTH sets the depth threshold of queue "mail"."""

from __future__ import annotations

import os

from conveyor import Conveyor

app = Conveyor(os.environ.get("CONVEYOR_URL", "sqlite:///test-monitored.db"))
app.alert(queue="mail", max_depth=int(os.environ.get("CONVEYOR_MAX_DEPTH", "1000")),
          max_p99_seconds=5.0)
app.alert(max_dead_per_minute=10, min_utilization=0.2, max_utilization=0.9)


@app.task(queue="mail")
def send(n: int) -> int:
    return n


@app.task(queue="mail", max_retries=0)
def bounce(n: int) -> None:
    raise RuntimeError(f"bounced {n}")
