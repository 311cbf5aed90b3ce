"""An app with a once-per-second schedule, for scheduler tests with real processes."""

from __future__ import annotations

import os

from conveyor import Conveyor

app = Conveyor(os.environ.get("CONVEYOR_URL", "sqlite:///test-cron.db"))


@app.cron("* * * * * *", name="tick")
def tick() -> None:
    """Does nothing: the tests count the runs enqueued, by their idempotency keys."""
