-- Recover expired leases: a RUNNING task whose deadline passed lost its worker. It goes back to
-- PENDING (the attempt stays counted) or, after max_worker_lost such losses, to the DLQ.
UPDATE conveyor_tasks
SET worker_lost = worker_lost + 1,
    state = CASE WHEN worker_lost + 1 >= :max_worker_lost THEN 'DEAD' ELSE 'PENDING' END,
    dead_reason = CASE WHEN worker_lost + 1 >= :max_worker_lost THEN 'worker_lost' END,
    completed_at = CASE WHEN worker_lost + 1 >= :max_worker_lost THEN :now END,
    error = 'lease expired: worker ' || coalesce(worker_id, '?') || ' stopped heartbeating'
            || ' during attempt ' || attempts || ' (worker lost ' || (worker_lost + 1) || ' times)',
    scheduled_at = :now,
    lease_token = NULL,
    lease_expires_at = NULL
WHERE seq IN (
    SELECT seq FROM conveyor_tasks
    WHERE state = 'RUNNING' AND lease_expires_at < :now
    LIMIT :limit
)
RETURNING state, queue
