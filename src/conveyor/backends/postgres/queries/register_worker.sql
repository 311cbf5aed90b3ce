-- Register (or refresh) a worker: its slots, queues and last heartbeat.
INSERT INTO conveyor_workers (id, host, pid, queues, concurrency, busy, started_at, last_seen)
VALUES (%(id)s, %(host)s, %(pid)s, %(queues)s::text[], %(concurrency)s, %(busy)s,
        %(started_at)s::float8,
        coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8))
ON CONFLICT (id) DO UPDATE SET busy = excluded.busy, concurrency = excluded.concurrency,
                               last_seen = excluded.last_seen
