-- Register (or refresh) a worker: its slots, queues and last heartbeat.
INSERT INTO conveyor_workers (id, host, pid, queues, concurrency, busy, started_at, last_seen)
VALUES (:id, :host, :pid, :queues, :concurrency, :busy, :started_at, :now)
ON CONFLICT (id) DO UPDATE SET busy = excluded.busy, concurrency = excluded.concurrency,
                               last_seen = excluded.last_seen
