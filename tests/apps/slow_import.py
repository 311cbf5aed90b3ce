"""A task module whose import is slow in a pool process (as one that loads a model or a big
library would be), instant in the worker that declares it. The URL comes from CONVEYOR_URL."""

from __future__ import annotations

import multiprocessing
import os
import time

from conveyor import Conveyor

IMPORT_SECONDS = 1.5

app = Conveyor(os.environ.get("CONVEYOR_URL", "sqlite:///test-slow-import.db"))

if multiprocessing.parent_process() is not None:
    time.sleep(IMPORT_SECONDS)  # the heavy import, paid by each freshly spawned pool process


@app.task(executor="process", timeout=1.0, max_retries=0)
def quick() -> int:
    return os.getpid()
