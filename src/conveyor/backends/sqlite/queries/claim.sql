-- Claim, step 2: lease the most urgent PENDING tasks of one queue (priority, then FIFO).
-- The lease deadline comes from the backend's clock; the token fences every later transition.
-- A paused queue (conveyor_queues.paused) gives nothing, checked inside this statement.
UPDATE conveyor_tasks
SET state = 'RUNNING',
    attempts = attempts + 1,
    worker_id = :worker_id,
    lease_token = lower(hex(randomblob(8))),
    lease_expires_at = :now + :lease_seconds,
    started_at = :now
WHERE seq IN (
    SELECT seq FROM conveyor_tasks
    WHERE state = 'PENDING' AND queue = :queue
      AND NOT EXISTS (SELECT 1 FROM conveyor_queues AS q
                      WHERE q.queue = :queue AND q.paused = 1)
    ORDER BY priority DESC, seq
    LIMIT :limit
)
RETURNING id, name, queue, payload, priority, attempts, max_retries, worker_lost, lease_token,
          lease_expires_at, created_at, scheduled_at, idempotency_key, timeout_seconds,
          result_ttl_seconds
