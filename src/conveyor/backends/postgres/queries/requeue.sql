-- Requeue: DEAD or CANCELLED tasks go back to PENDING with a fresh retry budget, waking the
-- workers of their queues. Returns those ids.
WITH clock AS (
    SELECT coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8) AS now
),
requeued AS (
    UPDATE conveyor_tasks
    SET state = 'PENDING',
        attempts = 0,
        worker_lost = 0,
        scheduled_at = clock.now,
        started_at = NULL,
        completed_at = NULL,
        expires_at = NULL,
        dead_reason = NULL,
        worker_id = NULL
    FROM clock
    WHERE id = ANY(%(ids)s::text[]) AND state IN ('DEAD', 'CANCELLED')
    RETURNING id, queue
)
SELECT id, pg_notify('conveyor_work', queue) FROM requeued
