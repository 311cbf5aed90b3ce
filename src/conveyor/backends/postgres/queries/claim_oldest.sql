-- Claim, the starvation share: lease the tasks of one queue that have waited longest since they
-- became due, whatever their priority, so a stream of urgent work cannot starve the rest.
-- A paused queue (conveyor_queues.paused) gives nothing, checked inside this statement.
WITH clock AS (
    SELECT coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8) AS now
),
picked AS (
    SELECT id FROM conveyor_tasks
    WHERE state = 'PENDING' AND queue = %(queue)s AND priority >= %(min_priority)s
      AND NOT EXISTS (SELECT 1 FROM conveyor_queues AS q
                      WHERE q.queue = %(queue)s AND q.paused)
    ORDER BY scheduled_at, seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
leased AS (
    UPDATE conveyor_tasks AS t
    SET state = 'RUNNING',
        attempts = t.attempts + 1,
        worker_id = %(worker_id)s,
        lease_token = replace(gen_random_uuid()::text, '-', ''),
        lease_expires_at = clock.now + %(lease_seconds)s::float8,
        started_at = clock.now
    FROM clock
    -- An array of the picked keys, not a join: the planner would hash-join the picked rows
    -- with a scan of the whole table (its cost then follows the table, not the batch).
    WHERE t.id = ANY(ARRAY(SELECT id FROM picked))
    RETURNING t.seq, t.id, t.name, t.queue, t.payload, t.priority, t.attempts, t.max_retries,
              t.worker_lost, t.lease_token, t.lease_expires_at, t.created_at, t.scheduled_at,
              t.idempotency_key, t.timeout_seconds, t.result_ttl_seconds
)
SELECT id, name, queue, payload, priority, attempts, max_retries, worker_lost, lease_token,
       lease_expires_at, created_at, scheduled_at, idempotency_key, timeout_seconds,
       result_ttl_seconds
FROM leased
ORDER BY scheduled_at, seq
