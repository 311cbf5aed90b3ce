-- Recover expired leases: a RUNNING task whose deadline passed lost its worker. It goes back to
-- PENDING (the attempt stays counted) or, after max_worker_lost such losses, to the DLQ.
-- SKIP LOCKED: a task whose worker is completing it right now is left to that worker.
WITH clock AS (
    SELECT coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8) AS now
),
expired AS (
    SELECT id FROM conveyor_tasks, clock
    WHERE state = 'RUNNING' AND lease_expires_at < clock.now
    ORDER BY lease_expires_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
recovered AS (
    UPDATE conveyor_tasks AS t
    SET worker_lost = t.worker_lost + 1,
        state = CASE WHEN t.worker_lost + 1 >= %(max_worker_lost)s THEN 'DEAD' ELSE 'PENDING' END,
        dead_reason = CASE WHEN t.worker_lost + 1 >= %(max_worker_lost)s THEN 'worker_lost' END,
        completed_at = CASE WHEN t.worker_lost + 1 >= %(max_worker_lost)s THEN clock.now END,
        error = 'lease expired: worker ' || coalesce(t.worker_id, '?') || ' stopped heartbeating'
                || ' during attempt ' || t.attempts || ' (worker lost ' || (t.worker_lost + 1)
                || ' times)',
        scheduled_at = clock.now,
        lease_token = NULL,
        lease_expires_at = NULL
    FROM expired, clock
    WHERE t.id = expired.id
    RETURNING t.state, t.queue
)
SELECT state, CASE WHEN state = 'PENDING' THEN pg_notify('conveyor_work', queue) END, queue
FROM recovered
