"""The lease keeper as a forked child (the worker creates it while single-threaded) and as a
fresh interpreter (threads already running): either way it extends the leases it is given,
so a rescuer finds nothing to recover while it lives, and the lease lapses once it is gone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r'''
import json, sys, threading, time
from conveyor.backends import open_backend
from conveyor.backends.base import Claim, Enqueue, Lease, NewTask, RecoverExpired
from conveyor.worker.lease_keeper import LeaseKeeper

url, threaded = sys.argv[1], sys.argv[2] == "threaded"
backend = open_backend(url)
backend.execute(Enqueue([NewTask(id="kept", name="n", queue="q", payload=b"", priority=0,
                                 max_retries=0)]))
[claimed] = backend.execute(Claim("w1", ["q"], 1, 1.0))
if threaded:
    stop = threading.Event()
    threading.Thread(target=stop.wait, daemon=True).start()
keeper = LeaseKeeper(url, {}, "w1", 1.0, 0.2)
held = [Lease(claimed.id, claimed.lease_token, claimed.queue)]
kind = type(keeper.process).__name__
requeued_while_kept = 0
deadline = time.monotonic() + 3.0  # three leases: only the keeper can keep this one alive
while time.monotonic() < deadline:
    keeper.update(held)  # as the worker's loop does: the keeper also hears it is alive
    requeued_while_kept += backend.execute(RecoverExpired(max_worker_lost=5)).requeued
    time.sleep(0.05)
keeper.close()
requeued_after, deadline = 0, time.monotonic() + 10.0
while not requeued_after and time.monotonic() < deadline:
    requeued_after = backend.execute(RecoverExpired(max_worker_lost=5)).requeued
    time.sleep(0.05)
print(json.dumps([kind, requeued_while_kept, requeued_after, keeper.process.poll()]))
'''


@pytest.mark.parametrize(("threaded", "kind"), [(False, "Forked"), (True, "Popen")])
def test_the_keeper_extends_leases_forked_or_spawned(tmp_path: Path, threaded: bool,
                                                     kind: str) -> None:
    url = f"sqlite:///{tmp_path / 'keeper.db'}"
    done = subprocess.run([sys.executable, "-c", SCRIPT, url,
                           "threaded" if threaded else "single"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    started, requeued_while_kept, requeued_after, exit_code = json.loads(
        done.stdout.strip().splitlines()[-1])
    assert started == kind
    assert requeued_while_kept == 0
    assert requeued_after == 1  # the probe works: without the keeper the lease lapses
    assert exit_code == 0
