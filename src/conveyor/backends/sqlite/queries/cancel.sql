-- Cancel: a task that has not started (or waits for a retry) becomes CANCELLED.
UPDATE conveyor_tasks
SET state = 'CANCELLED', completed_at = :now, expires_at = :now + result_ttl_seconds
WHERE id = :id AND state IN ('SCHEDULED', 'PENDING', 'FAILED')
RETURNING queue
