-- Unregister a worker (it stopped cleanly).
--
-- KEYS[1]  conveyor:workers            hash, worker id -> msgpack row
-- ARGV[1]  worker id
-- Returns: nothing
redis.call('HDEL', KEYS[1], ARGV[1])
return false
