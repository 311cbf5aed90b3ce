"""Redis memory per queued task, and worker RSS over a long drain (issue 3's two figures).

    .venv/bin/python benchmarks/redis_memory_and_rss.py --tasks 1000000

Starts a private redis-server (no persistence) on a free port, enqueues N small no-op tasks in
batches of 1,000 and reports the growth of ``used_memory`` per task; then drains them with one
worker process (``conveyor worker conveyor.bench:app --burst``), sampling its resident set size
from /proc every second, and reports RSS after the first 5% and at the end.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from conveyor import bench


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=128)
    args = parser.parse_args()
    n = args.tasks
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no", "--dir", tmp],
                                  stdout=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        try:
            bench.app.use(url)
            bench.noop.enqueue(-1, 0.0)  # scripts loaded, queue registered: not per-task cost
            client.delete(*client.keys("conveyor:{bench}:*"))
            before = int(client.info("memory")["used_memory"])
            started = time.perf_counter()
            for first in range(0, n, 1000):
                calls = [((i, 0.0), {}) for i in range(first, min(first + 1000, n))]
                bench.noop.enqueue_many(calls)
                if first % 100_000 == 0:
                    print(f"enqueued {first:,}", file=sys.stderr)
            enqueue_rate = n / (time.perf_counter() - started)
            after = int(client.info("memory")["used_memory"])
            print(f"{n:,} queued tasks: used_memory grew {after - before:,} bytes = "
                  f"{(after - before) / n:.1f} bytes per task (enqueue {enqueue_rate:,.0f}/s)")
            record = Path(tmp) / "record.bin"
            env = {**os.environ, "CONVEYOR_URL": url, "CONVEYOR_BENCH_RECORD": str(record)}
            worker = subprocess.Popen(
                [sys.executable, "-m", "conveyor", "worker", "conveyor.bench:app", "-q", "bench",
                 "--concurrency", str(args.concurrency), "--prefetch", str(args.concurrency),
                 "--burst", "--log-level", "warning"], env=env)
            samples: list[tuple[int, int]] = []
            started = time.perf_counter()
            while worker.poll() is None:
                done = record.stat().st_size // bench.RECORD.size if record.exists() else 0
                samples.append((done, rss_kib(worker.pid)))
                time.sleep(1.0)
            elapsed = time.perf_counter() - started
            early = next((rss for done, rss in samples if done >= n // 20), samples[0][1])
            for mark in range(1, 11):
                done, rss = next(((d, r) for d, r in samples if d >= n * mark // 10), samples[-1])
                print(f"  after {done:>9,} tasks: RSS {rss / 1024:.1f} MiB")
            print(f"drained {n:,} in {elapsed:.0f} s ({n / elapsed:,.0f}/s); worker RSS "
                  f"{early / 1024:.1f} MiB after 5%, {samples[-1][1] / 1024:.1f} MiB at the end, "
                  f"max {max(rss for _, rss in samples) / 1024:.1f} MiB")
        finally:
            bench.app.close()
            client.close()
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
