-- Release: prefetched tasks that never started go back to PENDING; the claim's attempt is taken
-- back, since nothing ran. Wakes the workers of their queues. Returns the ids released.
WITH released AS (
    UPDATE conveyor_tasks AS t
    SET state = 'PENDING',
        attempts = t.attempts - 1,
        worker_id = NULL,
        started_at = NULL,
        lease_token = NULL,
        lease_expires_at = NULL
    FROM unnest(%(ids)s::text[], %(lease_tokens)s::text[]) AS b(id, lease_token)
    WHERE t.id = b.id AND t.state = 'RUNNING' AND t.lease_token = b.lease_token
    RETURNING t.id, t.queue
)
SELECT id, pg_notify('conveyor_work', queue) FROM released
