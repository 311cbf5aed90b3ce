-- Claim, the starvation share: lease the tasks of one queue that have waited longest since they
-- became due, whatever their priority, so a stream of urgent work cannot starve the rest.
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
    ORDER BY scheduled_at, seq
    LIMIT :limit
)
RETURNING id, name, queue, payload, priority, attempts, max_retries, worker_lost, lease_token,
          lease_expires_at, created_at, scheduled_at, idempotency_key, timeout_seconds,
          result_ttl_seconds
