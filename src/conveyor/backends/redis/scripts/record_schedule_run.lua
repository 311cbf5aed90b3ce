-- Remember the newest run enqueued for a cron schedule; never move backwards (two leaders may
-- race).
--
-- KEYS[1]  conveyor:schedules          hash, schedule name -> msgpack {last_due_at, task id}
-- ARGV[1]  schedule name;  ARGV[2] last_due_at, epoch seconds;  ARGV[3] task id ('' = none)
-- Returns: nothing
local known = redis.call('HGET', KEYS[1], ARGV[1])
local due = tonumber(ARGV[2])
if known and cmsgpack.unpack(known)[1] >= due then
    return false
end
redis.call('HSET', KEYS[1], ARGV[1], cmsgpack.pack({due, ARGV[3]}))
return false
