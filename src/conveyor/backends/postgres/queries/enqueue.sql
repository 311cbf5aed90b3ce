-- Enqueue: a whole batch in one statement (arrays, one element per task, in order). A task is
-- PENDING when due now, SCHEDULED when due later. A task whose idempotency key already names a
-- live task (or an earlier task of this batch) is not written: the caller reads the existing id
-- with enqueue_existing.sql, in the same transaction. Every written task wakes the workers of its
-- queue (NOTIFY is delivered at commit, and only then), delayed ones too: a sleeping worker must
-- recompute when the next task falls due.
WITH clock AS (
    SELECT coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8) AS now
),
batch AS (
    SELECT *
    FROM unnest(%(ids)s::text[], %(names)s::text[], %(queues)s::text[], %(payloads)s::bytea[],
                %(priorities)s::int[], %(max_retries)s::int[], %(delays)s::float8[],
                %(etas)s::float8[], %(keys)s::text[], %(timeouts)s::float8[],
                %(ttls)s::float8[])
         WITH ORDINALITY AS b(id, name, queue, payload, priority, max_retries, delay, eta,
                              idempotency_key, timeout_seconds, result_ttl_seconds, ord)
),
inserted AS (
    INSERT INTO conveyor_tasks (
        id, name, queue, payload, priority, state, max_retries, created_at, scheduled_at,
        idempotency_key, timeout_seconds, result_ttl_seconds
    )
    SELECT b.id, b.name, b.queue, b.payload, b.priority,
           CASE WHEN coalesce(b.eta, clock.now + b.delay) > clock.now
                THEN 'SCHEDULED' ELSE 'PENDING' END,
           b.max_retries, clock.now, greatest(coalesce(b.eta, clock.now + b.delay), clock.now),
           b.idempotency_key, b.timeout_seconds, b.result_ttl_seconds
    FROM batch AS b CROSS JOIN clock
    ORDER BY b.ord
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, queue
)
SELECT id, pg_notify('conveyor_work', queue) FROM inserted
