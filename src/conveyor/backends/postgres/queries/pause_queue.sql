-- Pause (true) or resume (false) claims from one queue. Its tasks stay where they are; resuming
-- wakes the queue's idle workers (NOTIFY, delivered at commit).
WITH upserted AS (
    INSERT INTO conveyor_queues (queue, paused, updated_at)
    VALUES (%(queue)s, %(paused)s,
            coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8))
    ON CONFLICT (queue) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at
    RETURNING queue, paused
)
SELECT pg_notify('conveyor_work', queue) FROM upserted WHERE NOT paused
