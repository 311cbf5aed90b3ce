-- Extend (heartbeat): push the lease deadlines out, only for the holders of the lease tokens; a
-- batch in one statement. Returns the ids extended (the others are reported lost).
WITH clock AS (
    SELECT coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8) AS now
)
UPDATE conveyor_tasks AS t
SET lease_expires_at = clock.now + %(lease_seconds)s::float8
FROM unnest(%(ids)s::text[], %(lease_tokens)s::text[]) AS b(id, lease_token), clock
WHERE t.id = b.id AND t.state = 'RUNNING' AND t.lease_token = b.lease_token
RETURNING t.id
