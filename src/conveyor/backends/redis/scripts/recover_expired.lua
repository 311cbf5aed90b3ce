-- Recover expired leases: a RUNNING task whose deadline passed lost its worker. It goes back
-- to PENDING (the attempt stays counted, worker_lost + 1) or, after max_worker_lost such
-- losses, to DEAD with reason 'worker_lost'.
--
-- KEYS[1]  conveyor:sequence           string, the sequence counter
-- KEYS[2..] one group per queue (conveyor:{q}:tasks ... :signal, see keys.py)
-- ARGV[1]  now override, epoch seconds ('' = Redis TIME; tests only)
-- ARGV[2]  max_worker_lost;  ARGV[3] limit (tasks recovered at most, over all groups)
-- Returns: {requeued, dead, then per group: requeued, dead} (the metrics count expiries per queue)
local now = clock_now(ARGV[1])
local max_lost, left = tonumber(ARGV[2]), tonumber(ARGV[3])
local ngroups = (#KEYS - 1) / GROUP_SIZE
local requeued, dead, per_group = 0, 0, {}

-- The lost attempt of a readable record: back to PENDING, or DEAD after max_lost losses.
local function recover(g, id, rec)
    rec[WORKER_LOST] = rec[WORKER_LOST] + 1
    rec[ERROR] = 'lease expired: worker ' .. (rec[WORKER] or '?') ..
        ' stopped heartbeating during attempt ' .. rec[ATTEMPTS] ..
        ' (worker lost ' .. rec[WORKER_LOST] .. ' times)'
    rec[SCHEDULED], rec[TOKEN], rec[LEASE_EXPIRES] = now, false, false
    if rec[WORKER_LOST] >= max_lost then
        rec[DEAD_REASON], rec[COMPLETED] = 'worker_lost', now
        move(2, g, id, rec, 'DEAD', now)
        dead = dead + 1
        per_group[2 * g] = per_group[2 * g] + 1
    else
        rec[SEQUENCE] = redis.call('INCR', KEYS[1])
        move(2, g, id, rec, 'PENDING', ready_score(rec))
        signal(2, g, 1)
        requeued = requeued + 1
        per_group[2 * g - 1] = per_group[2 * g - 1] + 1
    end
    store(key_of(2, g, TASKS), id, rec)
end

for g = 1, ngroups do
    per_group[2 * g - 1], per_group[2 * g] = 0, 0
    if left <= 0 then break end
    local expired = redis.call('ZRANGEBYSCORE', key_of(2, g, LEASED), '-inf', '(' .. num(now),
                               'LIMIT', 0, left)
    for _, id in ipairs(expired) do
        local rec = load(key_of(2, g, TASKS), id)
        if not rec or rec.undecodable then
            bury(2, g, id, rec, LEASED, now)
            if rec then
                dead = dead + 1
                per_group[2 * g] = per_group[2 * g] + 1
            end
        else
            recover(g, id, rec)
        end
    end
    left = left - #expired
end
local reply = {requeued, dead}
for _, n in ipairs(per_group) do reply[#reply + 1] = n end
return reply
