-- Fail: RUNNING -> FAILED (retry due at now + retry_in) or, when retry_in is NULL, DEAD with a
-- reason. Only for the holder of the current lease token; a batch in one statement. DEAD tasks
-- never expire by age. A retry wakes the workers of its queue, so a sleeping one recomputes when
-- the next task falls due. The attempt's error (cut to error_chars) joins the last errors_kept
-- in attempt_errors. started_ats as in complete.sql. Returns the ids failed (the others are
-- reported lost).
WITH clock AS (
    SELECT coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8) AS now
),
failed AS (
    UPDATE conveyor_tasks AS t
    SET state = CASE WHEN b.retry_in IS NULL THEN 'DEAD' ELSE 'FAILED' END,
        started_at = CASE WHEN b.started_at IS NULL THEN t.started_at
                          ELSE greatest(t.started_at, least(b.started_at, clock.now)) END,
        scheduled_at = CASE WHEN b.retry_in IS NULL THEN t.scheduled_at
                            ELSE clock.now + b.retry_in END,
        completed_at = CASE WHEN b.retry_in IS NULL THEN clock.now END,
        dead_reason = b.dead_reason,
        error = b.error,
        attempt_errors = (
            CASE WHEN jsonb_array_length(coalesce(t.attempt_errors, '[]'))
                      >= %(errors_kept)s::int
                 THEN t.attempt_errors - 0 ELSE coalesce(t.attempt_errors, '[]') END
        ) || jsonb_build_array(jsonb_build_object(
            'attempt', t.attempts, 'worker', t.worker_id, 'ended_at', clock.now,
            'error', left(b.error, %(error_chars)s::int))),
        worker_lost = t.worker_lost + b.worker_lost,
        lease_token = NULL,
        lease_expires_at = NULL
    FROM unnest(%(ids)s::text[], %(lease_tokens)s::text[], %(errors)s::text[],
                %(retry_ins)s::float8[], %(dead_reasons)s::text[], %(worker_losts)s::int[],
                %(started_ats)s::float8[])
             AS b(id, lease_token, error, retry_in, dead_reason, worker_lost, started_at),
         clock
    WHERE t.id = b.id AND t.state = 'RUNNING' AND t.lease_token = b.lease_token
    RETURNING t.id, t.queue, t.state
)
SELECT id, CASE WHEN state = 'FAILED' THEN pg_notify('conveyor_work', queue) END FROM failed
