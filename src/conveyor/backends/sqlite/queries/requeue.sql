-- Requeue: a DEAD or CANCELLED task goes back to PENDING with a fresh retry budget.
UPDATE conveyor_tasks
SET state = 'PENDING',
    attempts = 0,
    worker_lost = 0,
    scheduled_at = :now,
    started_at = NULL,
    completed_at = NULL,
    expires_at = NULL,
    dead_reason = NULL,
    worker_id = NULL
WHERE id = :id AND state IN ('DEAD', 'CANCELLED')
