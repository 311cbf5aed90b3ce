-- Offer: the worker waits with a free slot for these queues; a single new task of one of them
-- may notify its listener's private channel instead of every worker (see 0006_offers.sql).
-- Renewed while the worker waits, which keeps its place (offered_at); the deadline comes from
-- the backend clock.
WITH clock AS (
    SELECT coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8) AS now
)
INSERT INTO conveyor_offers (worker_id, queue, channel, offered_at, expires_at)
SELECT %(worker_id)s, q, %(channel)s, clock.now, clock.now + %(seconds)s::float8
FROM unnest(%(queues)s::text[]) AS q CROSS JOIN clock
ON CONFLICT (worker_id, queue)
DO UPDATE SET channel = excluded.channel, expires_at = excluded.expires_at
