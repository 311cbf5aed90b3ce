-- Fail: RUNNING -> FAILED (retry due at now + retry_in) or, when retry_in is NULL, DEAD with a
-- reason. Only for the holder of the current lease token. DEAD tasks never expire by age.
-- The attempt's error (cut to :error_chars) joins the last :errors_kept in attempt_errors.
-- :started_at as in complete.sql.
UPDATE conveyor_tasks
SET state = CASE WHEN :retry_in IS NULL THEN 'DEAD' ELSE 'FAILED' END,
    started_at = coalesce(max(started_at, min(:started_at, :now)), started_at),
    scheduled_at = CASE WHEN :retry_in IS NULL THEN scheduled_at ELSE :now + :retry_in END,
    completed_at = CASE WHEN :retry_in IS NULL THEN :now ELSE NULL END,
    dead_reason = :dead_reason,
    error = :error,
    attempt_errors = json_insert(
        CASE WHEN json_array_length(coalesce(attempt_errors, '[]')) >= :errors_kept
             THEN json_remove(attempt_errors, '$[0]') ELSE coalesce(attempt_errors, '[]') END,
        '$[#]',
        json_object('attempt', attempts, 'worker', worker_id, 'ended_at', :now,
                    'error', substr(:error, 1, :error_chars))),
    worker_lost = worker_lost + :worker_lost,
    lease_token = NULL,
    lease_expires_at = NULL
WHERE id = :id AND state = 'RUNNING' AND lease_token = :lease_token
