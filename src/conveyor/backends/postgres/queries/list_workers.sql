SELECT id, host, pid, queues, concurrency, busy, started_at, last_seen
FROM conveyor_workers ORDER BY started_at
