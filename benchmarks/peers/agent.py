"""Run one workload for one peer, inside that peer's virtualenv; print the result as JSON.

``run.py`` (in Conveyor's own virtualenv) starts this with the peer's interpreter, because the
peer's client library only exists there. The last line on stdout is the result; progress goes
to stderr. Internal deadlines turn a hung peer into ``{"status": "timeout"}``; ``run.py`` kills
this process group and the workers listed in ``workers.pids`` if even that does not happen.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

import harness


def _terminated(signum: int, frame: object) -> NoReturn:
    raise SystemExit(f"terminated by signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--peer", required=True)
    parser.add_argument("--workload", required=True, choices=sorted(harness.WORKLOADS))
    parser.add_argument("--url", required=True)
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _terminated)

    def log(message: str) -> None:
        print(f"  [{args.label or args.peer} {args.workload}] {message}", file=sys.stderr,
              flush=True)

    # Adapters read the URL and the record path at import time, as the workers do.
    os.environ["PEERBENCH_URL"] = args.url
    os.environ["PEERBENCH_RECORD"] = str(args.workdir / "record.bin")
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    result: dict[str, Any] = {"peer": args.peer, "workload": args.workload, "n": args.n}
    driver = None
    try:
        adapter = importlib.import_module(f"adapters.{args.peer}")
        ctx = harness.Context(name=args.peer, adapter=adapter, url=args.url,
                              workdir=args.workdir, n=args.n,
                              deadline=time.monotonic() + args.timeout, log=log)
        if hasattr(adapter, "prepare"):
            adapter.prepare(args.url)
        result["settings"] = adapter.SETTINGS
        driver = harness.Driver(adapter.Producer())
        driver.open()
        result.update(harness.WORKLOADS[args.workload](ctx, driver))
        result["status"] = "ok"
    except harness.WorkloadTimeout as exc:
        result.update(status="timeout", error=str(exc))
    except Exception as exc:  # a peer failing is a result to report, not a crash
        result.update(status="error", error=f"{type(exc).__name__}: {exc}")
        traceback.print_exc(file=sys.stderr)
    finally:
        if driver is not None:
            try:
                driver.shutdown()
            except Exception as exc:  # closing a broken client must not hide the result
                log(f"closing the producer failed: {exc!r}")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
