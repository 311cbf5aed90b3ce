-- A claimed row that cannot be read (a column of the wrong type, written by hand or damaged):
-- to the dead letters with the reason, in the claim's own transaction, instead of failing every
-- claim of its queue. The numeric columns that do not hold numbers are reset, so the row can
-- be read (inspected, listed, requeued) from then on; the payload is kept as it is.
UPDATE conveyor_tasks
SET state = 'DEAD',
    dead_reason = 'decode_error',
    error = :error,
    completed_at = :now,
    lease_token = NULL,
    lease_expires_at = NULL,
    priority = CASE WHEN typeof(priority) = 'integer' THEN priority ELSE 0 END,
    attempts = CASE WHEN typeof(attempts) = 'integer' THEN attempts ELSE 0 END,
    max_retries = CASE WHEN typeof(max_retries) = 'integer' THEN max_retries ELSE 0 END,
    worker_lost = CASE WHEN typeof(worker_lost) = 'integer' THEN worker_lost ELSE 0 END,
    created_at = CASE WHEN typeof(created_at) IN ('integer', 'real') THEN created_at ELSE :now END,
    scheduled_at = CASE WHEN typeof(scheduled_at) IN ('integer', 'real') THEN scheduled_at
                        ELSE :now END,
    started_at = CASE WHEN typeof(started_at) IN ('integer', 'real') THEN started_at END,
    timeout_seconds = CASE WHEN typeof(timeout_seconds) IN ('integer', 'real')
                           THEN timeout_seconds END,
    result_ttl_seconds = CASE WHEN typeof(result_ttl_seconds) IN ('integer', 'real')
                              THEN result_ttl_seconds ELSE 0 END
WHERE id = :id
