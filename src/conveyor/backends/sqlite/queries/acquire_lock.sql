-- Acquire or renew a leadership lease: granted when the lock is free, expired, or already ours.
-- Returns the holder's row only when the caller holds the lock afterwards.
INSERT INTO conveyor_locks (name, holder, expires_at)
VALUES (:name, :holder, :now + :ttl)
ON CONFLICT (name) DO UPDATE
SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE conveyor_locks.holder = excluded.holder OR conveyor_locks.expires_at <= :now
RETURNING holder
