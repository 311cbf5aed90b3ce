-- Complete: RUNNING -> DONE, only for the holder of the current lease token.
UPDATE conveyor_tasks
SET state = 'DONE',
    result = :result,
    completed_at = :now,
    expires_at = :now + result_ttl_seconds,
    lease_token = NULL,
    lease_expires_at = NULL
WHERE id = :id AND state = 'RUNNING' AND lease_token = :lease_token
