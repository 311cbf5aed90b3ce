-- Record metrics at the backend's clock, inside the transition that caused them (Enqueue:
-- `enqueued`, Cancel: `cancelled`): add each queue's count to this minute and to its total (minute 0). Each session
-- writes its own shard row (backend pid mod 8), so producers of one queue do not serialize on
-- one row lock.
WITH clock AS (
    SELECT coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8) AS now
)
INSERT INTO conveyor_metrics (queue, minute, name, shard, value)
SELECT b.queue, m.minute, %(name)s, pg_backend_pid() %% 8, b.n
FROM unnest(%(queues)s::text[], %(counts)s::float8[]) AS b(queue, n)
CROSS JOIN clock
CROSS JOIN LATERAL (VALUES (floor(clock.now / 60)::bigint), (0::bigint)) AS m(minute)
ORDER BY b.queue, m.minute -- key order: writers sharing a shard never deadlock
ON CONFLICT (queue, minute, name, shard)
DO UPDATE SET value = conveyor_metrics.value + excluded.value
