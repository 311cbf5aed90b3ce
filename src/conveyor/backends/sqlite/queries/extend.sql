-- Extend (heartbeat): push the lease deadline out, only for the holder of the lease token.
UPDATE conveyor_tasks
SET lease_expires_at = :now + :lease_seconds
WHERE id = :id AND state = 'RUNNING' AND lease_token = :lease_token
