-- Enqueue: a whole batch in one statement (a JSON array of rows, in order). A task is
-- PENDING when due now, SCHEDULED when due later. A task whose idempotency key already names a
-- live task (or an earlier task of this batch) is not written: the caller reads the existing id
-- with enqueue_existing.sql, in the same transaction. Every queue written to wakes its workers
-- (one NOTIFY per queue, delivered at commit and only then), for delayed tasks too: a sleeping
-- worker must recompute when the next task falls due.
WITH clock AS (
    SELECT coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8) AS now
),
batch AS (
    -- One JSON document of positional rows: PostgreSQL parses it in C, where binding eleven
    -- arrays costs psycopg a Python loop per element (about 4x slower per batch).
    SELECT e->>0 AS id, e->>1 AS name, e->>2 AS queue, decode(e->>3, 'base64') AS payload,
           (e->>4)::int AS priority, (e->>5)::int AS max_retries, (e->>6)::float8 AS delay,
           (e->>7)::float8 AS eta, e->>8 AS idempotency_key, (e->>9)::float8 AS timeout_seconds,
           (e->>10)::float8 AS result_ttl_seconds, ord
    FROM jsonb_array_elements(%(batch)s::jsonb) WITH ORDINALITY AS b(e, ord)
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
),
woken AS (
    SELECT count(pg_notify('conveyor_work', queue)) AS queues
    FROM (SELECT DISTINCT queue FROM inserted) AS q
)
SELECT id FROM inserted CROSS JOIN woken
