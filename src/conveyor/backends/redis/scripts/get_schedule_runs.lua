-- Read the newest enqueued run of each named cron schedule (a read).
--
-- KEYS[1]  conveyor:schedules          hash, schedule name -> msgpack {last_due_at, task id}
-- ARGV     schedule names
-- Returns: a flat array, 3 per known schedule: name, last_due_at, task id ('' = none)
local reply = {}
for _, name in ipairs(ARGV) do
    local known = redis.call('HGET', KEYS[1], name)
    if known then
        local run = cmsgpack.unpack(known)
        reply[#reply + 1] = name
        reply[#reply + 1] = num(run[1])
        reply[#reply + 1] = run[2]
    end
end
return reply
