-- Enqueue: a whole batch in one statement (a JSON array of rows, in order), atomic on its own:
-- on the backend's connections it runs in autocommit, one round trip, committed durably (those
-- sessions set synchronous_commit = on); on a caller's connection, inside its transaction. A
-- task is PENDING when due now, SCHEDULED when due later. A task whose idempotency key already
-- names a live task (or an earlier task of this batch) is not written: the caller then reads
-- the existing id with enqueue_existing.sql. Every queue written to wakes its workers (one
-- NOTIFY per queue, delivered at commit and only then), for delayed tasks too: a sleeping
-- worker must recompute when the next task falls due. A queue that gets a single task due now
-- wakes one waiting worker instead, on the private channel of its oldest live offer
-- (0006_offers.sql), when there is one and the statement is `targeted` (it commits as it
-- runs: not in a caller's transaction). The tasks written are counted in the
-- `enqueued` metrics here too (as record_metrics_now.sql counts them: its shard per session).
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
    RETURNING id, queue, state
),
woken AS (
    SELECT count(pg_notify(coalesce(o.channel, 'conveyor_work'), q.queue)) AS queues
    FROM (SELECT queue, count(*) = 1 AND bool_and(state = 'PENDING') AS single
          FROM inserted GROUP BY queue) AS q
    LEFT JOIN LATERAL (
        SELECT channel FROM conveyor_offers AS o CROSS JOIN clock
        WHERE %(targeted)s::bool AND q.single AND o.queue = q.queue
          AND o.expires_at > clock.now
        ORDER BY o.offered_at
        LIMIT 1
    ) AS o ON true
),
counted AS (
    INSERT INTO conveyor_metrics (queue, minute, name, shard, value)
    SELECT i.queue, m.minute, 'enqueued', pg_backend_pid() %% 8, i.n
    FROM (SELECT queue, count(*)::float8 AS n FROM inserted GROUP BY queue) AS i
    CROSS JOIN clock
    CROSS JOIN LATERAL (VALUES (floor(clock.now / 60)::bigint), (0::bigint)) AS m(minute)
    ORDER BY i.queue, m.minute -- key order: writers sharing a shard never deadlock
    ON CONFLICT (queue, minute, name, shard)
    DO UPDATE SET value = conveyor_metrics.value + excluded.value
)
SELECT id FROM inserted CROSS JOIN woken
