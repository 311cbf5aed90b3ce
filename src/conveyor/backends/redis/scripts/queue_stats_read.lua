-- Queue stats (a read): the number of tasks in each state, and when the oldest PENDING task
-- became due (the record of the lowest sequence among the heads of the priority bands).
--
-- KEYS[1..] one group per queue (conveyor:{q}:tasks ... :signal, see keys.py), then the pause
--   flag of each queue (conveyor:{q}:paused), in the same order
-- Returns: per group, {PENDING, SCHEDULED, FAILED, RUNNING, DONE, CANCELLED, DEAD,
--   oldest pending scheduled_at (false = none), paused (1 or 0)}
local ngroups = #KEYS / (GROUP_SIZE + 1)
local reply = {}
for g = 1, ngroups do
    local counts = {}
    for i, slot in ipairs({READY, SCHEDULED_Z, RETRYING, LEASED, DONE, CANCELLED, DEAD}) do
        counts[i] = redis.call('ZCARD', key_of(1, g, slot))
    end
    local best, best_sequence = false, false
    for band = 0, 9 do
        local low = band * BAND
        local head = redis.call('ZRANGEBYSCORE', key_of(1, g, READY), num(low), '(' .. num(low + BAND),
                                'WITHSCORES', 'LIMIT', 0, 1)
        if #head > 0 and (not best_sequence or tonumber(head[2]) - low < best_sequence) then
            best, best_sequence = head[1], tonumber(head[2]) - low
        end
    end
    local oldest = best and load(key_of(1, g, TASKS), best)
    counts[8] = oldest and num(oldest[SCHEDULED]) or false
    counts[9] = redis.call('EXISTS', KEYS[ngroups * GROUP_SIZE + g])
    reply[g] = counts
end
return reply
