-- Claim, step 2: lease the most urgent PENDING tasks of one queue (priority, then FIFO).
-- The lease deadline comes from the backend's clock; the token fences every later transition.
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
    ORDER BY priority DESC, seq
    LIMIT :limit
)
RETURNING id, name, queue, payload, priority, attempts, max_retries, worker_lost, lease_token,
          lease_expires_at, created_at, scheduled_at, idempotency_key, timeout_seconds,
          result_ttl_seconds
