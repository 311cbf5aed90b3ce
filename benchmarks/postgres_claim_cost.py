"""Claim cost on PostgreSQL as the backlog grows: 1k to 1M PENDING tasks in one queue.

    .venv/bin/python benchmarks/postgres_claim_cost.py [--admin-url URL] [--sizes 1000,1000000]

Creates a private database on the server (dropped at the end), fills ``conveyor_tasks`` with a
backlog of PENDING tasks of random priorities (plus as many DONE ones, which the partial indexes
must ignore), then times ``Claim`` batches of 1, 10 and 256 (each claimed batch is completed,
as a worker would) and prints ``EXPLAIN (ANALYZE, BUFFERS)`` of the claim statement (batches of
10 and 256) at the largest size. The figures in docs/backends.md come from this script.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import psycopg
from psycopg import sql

from conveyor.backends.base import Claim, Complete, Completion
from conveyor.backends.postgres.backend import PostgresBackend
from conveyor.backends.postgres.plans import PROMOTE_LIMIT, QUERIES

FILL = """
INSERT INTO conveyor_tasks (id, name, queue, payload, priority, state, max_retries, created_at,
                            scheduled_at, result_ttl_seconds, completed_at, expires_at)
SELECT gen_random_uuid()::text, 'bench.noop', 'default', '\\x9290'::bytea,
       (random() * 9)::int, %(state)s, 3, e, e, 86400,
       CASE WHEN %(state)s = 'DONE' THEN e END, CASE WHEN %(state)s = 'DONE' THEN e + 86400 END
FROM generate_series(1, %(count)s) AS g,
     LATERAL (SELECT extract(epoch FROM now())::float8 - 86400 + g * 0.001 AS e) AS t
"""


def timed_claims(backend: PostgresBackend, batch: int, rounds: int) -> list[float]:
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        claimed = backend.execute(Claim("bench", ["default"], batch, 30.0, oldest_first=0))
        seconds.append(time.perf_counter() - started)
        backend.execute(Complete([Completion(c.id, c.lease_token, None) for c in claimed]))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="a database to create (and drop) the benchmark's database from")
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    name = f"conveyor_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = psycopg.conninfo.conninfo_to_dict(args.admin_url)
    url = psycopg.conninfo.make_conninfo(args.admin_url, dbname=name)
    print(f"server: {info.get('host')}:{info.get('port', 5432)}, database {name}")
    backend = PostgresBackend(url)
    try:
        backend.migrate()
        loaded = 0
        with psycopg.connect(url, autocommit=True) as conn:
            print(f"{'backlog':>10} {'batch':>5} {'median ms':>10} {'p99 ms':>8}")
            for size in sizes:
                for state in ("PENDING", "DONE"):
                    conn.execute(FILL, {"state": state, "count": size - loaded})
                loaded = size
                conn.execute("VACUUM ANALYZE conveyor_tasks")
                for batch in (1, 10, 256):
                    seconds = sorted(timed_claims(backend, batch, args.rounds))
                    p99 = seconds[int(len(seconds) * 0.99) - 1]
                    print(f"{size:>10} {batch:>5} {statistics.median(seconds) * 1000:>10.3f} "
                          f"{p99 * 1000:>8.3f}")
            for batch in (10, 256):
                with conn.transaction(force_rollback=True):  # ANALYZE runs it: take nothing
                    plan = conn.execute(
                        b"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + QUERIES["claim"],
                        {"now": None, "queue": "default", "limit": batch, "worker_id": "bench",
                         "lease_seconds": 30.0, "min_priority": 0,
                         # as a claim's first statement: it promotes what is due (nothing here)
                         "promote_queues": ["default"], "promote_limit": PROMOTE_LIMIT},
                    ).fetchall()
                print(f"\nEXPLAIN of claim.sql, batch {batch}, {sizes[-1]:,} PENDING + "
                      f"{sizes[-1]:,} DONE rows:")
                print("\n".join(line for (line,) in plan))
    finally:
        backend.close()
        with psycopg.connect(args.admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


if __name__ == "__main__":
    main()
