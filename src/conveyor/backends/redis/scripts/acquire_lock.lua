-- Acquire or renew a leadership lease: granted when the lock is free, expired, or already held
-- by this holder; the deadline comes from the backend's clock.
--
-- KEYS[1]  conveyor:lock:{name}        hash {holder, expires_at}
-- ARGV[1]  now override, epoch seconds ('' = Redis TIME; tests only)
-- ARGV[2]  holder;  ARGV[3] ttl, seconds
-- Returns: 1 when the holder has the lock afterwards, 0 otherwise
local now = clock_now(ARGV[1])
local holder = redis.call('HGET', KEYS[1], 'holder')
local expires = tonumber(redis.call('HGET', KEYS[1], 'expires_at') or '0')
if holder and holder ~= ARGV[2] and expires > now then
    return 0
end
redis.call('HSET', KEYS[1], 'holder', ARGV[2], 'expires_at', num(now + tonumber(ARGV[3])))
return 1
