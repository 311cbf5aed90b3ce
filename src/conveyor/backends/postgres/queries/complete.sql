-- Complete: RUNNING -> DONE, only for the holder of the current lease token; a batch in one
-- statement. Returns the ids completed (the caller reports the others as lost).
WITH clock AS (
    SELECT coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8) AS now
)
UPDATE conveyor_tasks AS t
SET state = 'DONE',
    result = b.result,
    completed_at = clock.now,
    expires_at = clock.now + t.result_ttl_seconds,
    lease_token = NULL,
    lease_expires_at = NULL
FROM unnest(%(ids)s::text[], %(lease_tokens)s::text[], %(results)s::bytea[])
         AS b(id, lease_token, result),
     clock
WHERE t.id = b.id AND t.state = 'RUNNING' AND t.lease_token = b.lease_token
RETURNING t.id
