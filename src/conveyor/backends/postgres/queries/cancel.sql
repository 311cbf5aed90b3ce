-- Cancel: tasks that have not started (or wait for a retry) become CANCELLED. Returns those ids.
WITH clock AS (
    SELECT coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8) AS now
)
UPDATE conveyor_tasks
SET state = 'CANCELLED', completed_at = clock.now, expires_at = clock.now + result_ttl_seconds
FROM clock
WHERE id = ANY(%(ids)s::text[]) AND state IN ('SCHEDULED', 'PENDING', 'FAILED')
RETURNING id, queue
