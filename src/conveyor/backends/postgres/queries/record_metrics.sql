-- Record metrics: add each count to its (queue, minute, name) row and to the queue's total
-- (minute 0), one statement for the whole batch. Counts of one name from several minutes meet
-- in the total, hence the GROUP BY (an upsert may touch a row once). Shard: backend pid mod 8.
-- Rows are written in key order, so two writers sharing a shard never deadlock.
INSERT INTO conveyor_metrics (queue, minute, name, shard, value)
SELECT c.queue, m.minute, c.name, pg_backend_pid() %% 8, sum(c.value)
FROM unnest(%(queues)s::text[], %(minutes)s::bigint[], %(names)s::text[],
            %(values)s::float8[]) AS c(queue, minute, name, value)
CROSS JOIN LATERAL (VALUES (c.minute), (0::bigint)) AS m(minute)
GROUP BY c.queue, m.minute, c.name
ORDER BY c.queue, m.minute, c.name
ON CONFLICT (queue, minute, name, shard)
DO UPDATE SET value = conveyor_metrics.value + excluded.value
