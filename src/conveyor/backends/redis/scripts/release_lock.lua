-- Release a leadership lease this holder has, so a successor need not wait for the TTL.
--
-- KEYS[1]  conveyor:lock:{name}        hash {holder, expires_at}
-- ARGV[1]  holder
-- Returns: nothing
if redis.call('HGET', KEYS[1], 'holder') == ARGV[1] then
    redis.call('DEL', KEYS[1])
end
return false
