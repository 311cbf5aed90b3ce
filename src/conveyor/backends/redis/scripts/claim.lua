-- Claim: due SCHEDULED/FAILED tasks become PENDING (in due order), then PENDING -> RUNNING for
-- up to `limit` tasks: first `oldest_first` of them oldest-ready-first whatever the priority
-- (the starvation share), the rest by priority then FIFO; queues are served in the given order.
-- Each lease gets a fresh token and a deadline from the backend's clock. A queue left with no
-- PENDING task drops its wake-up tokens: nothing is left to wake a worker for.
--
-- KEYS[1]  conveyor:sequence           string, the sequence counter
-- KEYS[2..] one group per queue (conveyor:{q}:tasks ... :signal, see keys.py), in serving order
-- KEYS[1+G*GROUP_SIZE+g] then the pause flag of each queue (conveyor:{q}:paused), same order:
--           a paused queue gives nothing (its due tasks are still promoted) and drops its
--           wake-up tokens (resuming it pushes one)
-- ARGV[1]  now override, epoch seconds ('' = Redis TIME; tests only)
-- ARGV[2]  worker id;  ARGV[3] limit;  ARGV[4] lease seconds;  ARGV[5] oldest-first count
-- ARGV[6]  number of groups G; ARGV[7 .. 6+G] their queue names
-- ARGV[7+G] a random salt (made by the client): the lease tokens are salt:1, salt:2, ..., unique
--           per claim without sending `limit` random tokens over the wire
-- ARGV[8+G] the lowest priority to take (0 = any): the worker's urgent claim
-- ARGV[9+G .. 8+2G] the worker's offer in each queue's idle zset (keys.offer): withdrawn when
--           the claim takes anything (see handoff.py)
-- Returns: a flat array, 15 per leased task: id, queue, name, payload, priority, attempts,
--   max_retries, worker_lost, lease_token, lease_expires_at, created_at, scheduled_at,
--   idempotency_key, timeout_seconds, result_ttl_seconds (times and durations in whole
--   microseconds: see lease_to)
local now = clock_now(ARGV[1])
local worker, limit, lease = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local oldest_first, ngroups = math.min(tonumber(ARGV[5]), limit), tonumber(ARGV[6])
local salt, next_token = ARGV[7 + ngroups], 1
local min_priority = tonumber(ARGV[8 + ngroups] or '0')
local last_band = 9 - min_priority -- bands hold (9 - priority): 0 is priority 9
local PROMOTE_MAX = 1000 -- per index and claim: a huge due backlog moves over several claims
local open_queue = {}
for g = 1, ngroups do
    open_queue[g] = redis.call('EXISTS', KEYS[1 + ngroups * GROUP_SIZE + g]) == 0
end

for g = 1, ngroups do
    local due = {}
    for _, slot in ipairs({SCHEDULED_Z, RETRYING}) do
        local found = redis.call('ZRANGEBYSCORE', key_of(2, g, slot), '-inf', num(now),
                                 'WITHSCORES',
                                 'LIMIT', 0, PROMOTE_MAX)
        for i = 1, #found, 2 do due[#due + 1] = {found[i], tonumber(found[i + 1]), slot} end
    end
    table.sort(due, function(x, y) return x[2] < y[2] end)
    for _, entry in ipairs(due) do
        local id = entry[1]
        local rec = load(key_of(2, g, TASKS), id)
        if not rec or rec.undecodable then
            bury(2, g, id, rec, entry[3], now)
        else
            rec[SEQUENCE] = redis.call('INCR', KEYS[1])
            move(2, g, id, rec, 'PENDING', ready_score(rec))
            store(key_of(2, g, TASKS), id, rec)
        end
    end
end

-- A queue with nothing ready (after the promotions above) has nothing to lease: an idle
-- worker claims after each task it ends, and that claim made sixteen calls on empty keys (ten
-- of them one per priority band), now five.
local ready = {}
for g = 1, ngroups do
    ready[g] = open_queue[g] and redis.call('EXISTS', key_of(2, g, READY)) == 1
end

local reply, taken, moves = {}, 0, new_moves()

local function lease_one(g, id)
    local rec = load(key_of(2, g, TASKS), id)
    if not rec or rec.undecodable then -- to the dead letters, not to a worker; the claim goes on
        bury(2, g, id, rec, READY, now)
        return
    end
    local token = salt .. ':' .. next_token
    next_token = next_token + 1
    lease_to(id, ARGV[6 + g], rec, worker, token, now, lease, reply)
    defer_move(moves, 2, g, id, rec, 'RUNNING', now + lease)
    store(key_of(2, g, TASKS), id, rec)
    taken = taken + 1
end

-- The oldest ready tasks of one queue: the heads of its ten priority bands, merged by sequence.
local function oldest(g, n)
    local found = {}
    for band = 0, last_band do
        local low = band * BAND
        local heads = redis.call('ZRANGEBYSCORE', key_of(2, g, READY), num(low),
                                 '(' .. num(low + BAND),
                                 'WITHSCORES', 'LIMIT', 0, n)
        for i = 1, #heads, 2 do found[#found + 1] = {heads[i], tonumber(heads[i + 1]) - low} end
    end
    table.sort(found, function(x, y) return x[2] < y[2] end)
    local ids = {}
    for i = 1, math.min(n, #found) do ids[i] = found[i][1] end
    return ids
end

local goal = oldest_first
for g = 1, ngroups do
    if taken >= goal then break end
    if ready[g] then
        for _, id in ipairs(oldest(g, goal - taken)) do lease_one(g, id) end
    end
end
flush_moves(moves) -- before the priority pass reads the ready index again
for g = 1, ngroups do
    if taken >= limit then break end
    if ready[g] then
        local ids
        if min_priority > 0 then
            ids = redis.call('ZRANGEBYSCORE', key_of(2, g, READY), '-inf',
                             '(' .. num((last_band + 1) * BAND), 'LIMIT', 0, limit - taken)
        else
            ids = redis.call('ZRANGE', key_of(2, g, READY), 0, limit - taken - 1)
        end
        for _, id in ipairs(ids) do lease_one(g, id) end
    end
end
flush_moves(moves)
for g = 1, ngroups do
    if not ready[g] or redis.call('EXISTS', key_of(2, g, READY)) == 0 then
        redis.call('DEL', key_of(2, g, SIGNAL))
    end
    -- A worker that took work may have no free slot left: its offer no longer holds.
    if taken > 0 and ARGV[8 + ngroups + g] then
        redis.call('ZREM', key_of(2, g, IDLE), ARGV[8 + ngroups + g])
    end
end
return reply
