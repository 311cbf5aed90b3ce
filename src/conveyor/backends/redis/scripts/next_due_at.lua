-- Next due time (a read): the earliest due time of a SCHEDULED or FAILED task in these queues.
--
-- KEYS[1..] one group per queue (conveyor:{q}:tasks ... :signal, see keys.py)
-- Returns: epoch seconds as a string, or false when nothing waits
local ngroups = #KEYS / GROUP_SIZE
local best = false
for g = 1, ngroups do
    for _, slot in ipairs({SCHEDULED_Z, RETRYING}) do
        local head = redis.call('ZRANGE', key_of(1, g, slot), 0, 0, 'WITHSCORES')
        if #head > 0 and (not best or tonumber(head[2]) < best) then best = tonumber(head[2]) end
    end
end
return num(best)
