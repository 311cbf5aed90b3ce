-- Complete: RUNNING -> DONE, only for the holder of the current lease token. :started_at, the
-- attempt's real start as its worker reports it (NULL: the lease's start stays), is kept
-- between the lease's start and now.
UPDATE conveyor_tasks
SET state = 'DONE',
    started_at = coalesce(max(started_at, min(:started_at, :now)), started_at),
    result = :result,
    completed_at = :now,
    expires_at = :now + result_ttl_seconds,
    lease_token = NULL,
    lease_expires_at = NULL
WHERE id = :id AND state = 'RUNNING' AND lease_token = :lease_token
