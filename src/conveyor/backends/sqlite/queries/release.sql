-- Release: a prefetched task that never started goes back to PENDING; the claim's attempt is
-- taken back, since nothing ran.
UPDATE conveyor_tasks
SET state = 'PENDING',
    attempts = attempts - 1,
    worker_id = NULL,
    started_at = NULL,
    lease_token = NULL,
    lease_expires_at = NULL
WHERE id = :id AND state = 'RUNNING' AND lease_token = :lease_token
