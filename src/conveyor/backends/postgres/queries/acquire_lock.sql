-- Acquire or renew a leadership lease: granted when the lock is free, expired, or already ours.
-- Returns the holder's row only when the caller holds the lock afterwards.
INSERT INTO conveyor_locks AS l (name, holder, expires_at)
VALUES (%(name)s, %(holder)s,
        coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8)
        + %(ttl)s::float8)
ON CONFLICT (name) DO UPDATE
SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE l.holder = excluded.holder
   OR l.expires_at <= coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8)
RETURNING holder
