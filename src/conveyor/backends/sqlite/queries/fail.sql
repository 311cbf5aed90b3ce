-- Fail: RUNNING -> FAILED (retry due at now + retry_in) or, when retry_in is NULL, DEAD with a
-- reason. Only for the holder of the current lease token. DEAD tasks never expire by age.
UPDATE conveyor_tasks
SET state = CASE WHEN :retry_in IS NULL THEN 'DEAD' ELSE 'FAILED' END,
    scheduled_at = CASE WHEN :retry_in IS NULL THEN scheduled_at ELSE :now + :retry_in END,
    completed_at = CASE WHEN :retry_in IS NULL THEN :now ELSE NULL END,
    dead_reason = :dead_reason,
    error = :error,
    worker_lost = worker_lost + :worker_lost,
    lease_token = NULL,
    lease_expires_at = NULL
WHERE id = :id AND state = 'RUNNING' AND lease_token = :lease_token
