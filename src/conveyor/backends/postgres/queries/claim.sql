-- Claim, by priority: lease the most urgent PENDING tasks of one queue (priority, then FIFO),
-- promoting what is due first when it is the claim's first statement (see `promoted`).
-- FOR UPDATE SKIP LOCKED: concurrent claimers take disjoint rows without waiting for each other.
-- The lease deadline comes from the backend clock; the token fences every later transition.
-- A paused queue (conveyor_queues.paused) gives nothing, checked inside this statement.
WITH clock AS (
    -- set_config: this statement's commit does not wait for its WAL flush. If a crash loses a
    -- claim, its tasks are simply PENDING again (never started): at-least-once holds. Set
    -- here, so that a claim is one plain statement: a pipeline with SET LOCAL cost 0.2-0.3 ms
    -- more per round trip.
    SELECT coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8) AS now,
           set_config('synchronous_commit', 'off', true) AS relaxed
),
promoted AS (
    -- Due delayed tasks and retry waits of the worker's queues become PENDING (only a due task
    -- is ever leased: a delay is never a lease). The first statement of a claim does this for
    -- all its queues (%(promote_queues)s; empty after). The rows it moves are not visible to
    -- this statement, so one that moved any leases nothing (a task just due may outrank what
    -- it sees) and the plan sends it again. SKIP LOCKED: two claimers promoting at once never
    -- wait for each other.
    UPDATE conveyor_tasks
    SET state = 'PENDING'
    WHERE id = ANY(ARRAY(
        SELECT id FROM conveyor_tasks, clock
        WHERE state IN ('SCHEDULED', 'FAILED') AND queue = ANY(%(promote_queues)s::text[])
          AND scheduled_at <= clock.now
        LIMIT %(promote_limit)s
        FOR UPDATE SKIP LOCKED
    ))
    RETURNING 1
),
picked AS (
    SELECT id FROM conveyor_tasks
    WHERE state = 'PENDING' AND queue = %(queue)s AND priority >= %(min_priority)s
      AND NOT EXISTS (SELECT 1 FROM conveyor_queues AS q
                      WHERE q.queue = %(queue)s AND q.paused)
      AND NOT EXISTS (SELECT 1 FROM promoted)
    ORDER BY priority DESC, seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
leased AS (
    UPDATE conveyor_tasks AS t
    SET state = 'RUNNING',
        attempts = t.attempts + 1,
        worker_id = %(worker_id)s,
        lease_token = replace(gen_random_uuid()::text, '-', ''),
        lease_expires_at = clock.now + %(lease_seconds)s::float8,
        started_at = clock.now
    FROM clock
    -- An array of the picked keys, not a join: the planner would hash-join the picked rows
    -- with a scan of the whole table (its cost then follows the table, not the batch).
    WHERE t.id = ANY(ARRAY(SELECT id FROM picked))
    RETURNING t.seq, t.id, t.name, t.queue, t.payload, t.priority, t.attempts, t.max_retries,
              t.worker_lost, t.lease_token, t.lease_expires_at, t.created_at, t.scheduled_at,
              t.idempotency_key, t.timeout_seconds, t.result_ttl_seconds
)
-- One row at least: the count of rows promoted comes with every row, and alone (the other
-- columns null) when nothing was leased.
SELECT l.id, l.name, l.queue, l.payload, l.priority, l.attempts, l.max_retries, l.worker_lost,
       l.lease_token, l.lease_expires_at, l.created_at, l.scheduled_at, l.idempotency_key,
       l.timeout_seconds, l.result_ttl_seconds, p.promoted
FROM (SELECT count(*) AS promoted FROM promoted) AS p
LEFT JOIN leased AS l ON true
ORDER BY l.priority DESC, l.seq
