-- Enqueue: new tasks become PENDING (due now) or SCHEDULED (due later), all or none.
-- An idempotency key already present (or repeated in this batch) returns the task that holds it
-- instead of writing a new one. A duplicate task id fails the whole batch before any write.
-- A task due now may go straight to a waiting worker instead (take_offer: leased into its
-- inbox, RUNNING at once). Each queue gets one wake-up token per other new task (capped), so as
-- many idle workers wake; a delayed task wakes one too, so a worker sleeping until a later due
-- time re-reads it.
-- A task due now that goes ahead of every task already waiting in its queue is also announced
-- on the queue's urgent stream (see announce_urgent), with the batch's highest such priority.
--
-- KEYS[1]  conveyor:sequence           string, the sequence counter
-- KEYS[2]  conveyor:idempotency        hash, key -> task id
-- KEYS[3]  conveyor:queues             set, the queue registry
-- KEYS[4..] one group per queue (conveyor:{q}:tasks ... :idle, see keys.py); a hand-off also
--           writes the inbox its offer names (conveyor:{q}:inbox:{worker}, same tag)
-- KEYS[4+G*GROUP_SIZE..] then per queue its metrics: conveyor:{q}:totals (hash, name -> total)
--           and conveyor:{q}:minutes (hash, '<minute>:<name>' -> count); each created task
--           adds 1 to `enqueued` in both
-- ARGV[1]  now override, epoch seconds ('' = Redis TIME; tests only)
-- ARGV[2]  number of groups G; ARGV[3 .. 2+G] their tags (queue names; q#p for partition p)
-- then 11 per task: group (1-based), id, name, payload, priority, max_retries,
--   delay seconds, eta epoch seconds ('' = none), idempotency key ('' = none),
--   timeout seconds ('' = none), result_ttl seconds
-- Returns: a flat array, per task: id, created (1 = written, 0 = existing task returned)
-- Errors: 'duplicate task id <id>' (nothing written)
local now = clock_now(ARGV[1])
local ngroups = tonumber(ARGV[2])
local first = 3 + ngroups
local count = (#ARGV - first + 1) / 11
local reply, plan, claimed_keys, seen_ids = {}, {}, {}, {}

for i = 0, count - 1 do
    local a = first + i * 11
    local group, id, key = tonumber(ARGV[a]), ARGV[a + 1], ARGV[a + 8]
    local existing = false
    if key ~= '' then
        existing = claimed_keys[key] or redis.call('HGET', KEYS[2], key)
    end
    if existing then
        reply[#reply + 1] = existing
        reply[#reply + 1] = 0
    else
        if seen_ids[id] or redis.call('HEXISTS', key_of(4, group, TASKS), id) == 1 then
            return redis.error_reply('duplicate task id ' .. id)
        end
        seen_ids[id] = true
        if key ~= '' then claimed_keys[key] = id end
        plan[#plan + 1] = a
        reply[#reply + 1] = id
        reply[#reply + 1] = 1
    end
end

-- A worker waiting for this queue's work (an offer in its idle zset, see handoff.py) gets a
-- task due now leased straight into its inbox, when no ready task waits ahead of it. (A due
-- delayed task or retry not promoted yet would queue behind it anyway: a claim promotes it
-- with a new sequence.) One task per offer: taking an offer removes it. The offer taken is
-- the one renewed last, by the worker that finished a task last (a warm process); if even it
-- has lapsed, all have, and they go. Two calls on this path, since each one counts: the
-- single enqueue is part of every pickup. Once a queue has no offer to give, the rest of the
-- batch does not look again (a bulk enqueue of 1,000 would make 2,000 calls for nothing).
local no_offer = {}
local function take_offer(group)
    if no_offer[group] then return nil end
    if redis.call('EXISTS', key_of(4, group, READY)) == 1 then
        no_offer[group] = true
        return nil
    end
    local idle = key_of(4, group, IDLE)
    local latest = redis.call('ZPOPMAX', idle)
    if #latest == 0 or tonumber(latest[2]) <= now then
        if #latest > 0 then redis.call('DEL', idle) end
        no_offer[group] = true
        return nil
    end
    return cmsgpack.unpack(latest[1]) -- {inbox key, worker id, lease seconds}
end

-- A claim row as one RESP array (the worker parses it as it parses a script's reply).
local function resp(row)
    local parts = {'*' .. #row .. '\r\n'}
    for i = 1, #row do
        local v = row[i]
        if v == false then
            parts[#parts + 1] = '$-1\r\n'
        else
            -- tostring keeps 14 digits; microseconds since the epoch have 16
            v = type(v) == 'number' and string.format('%.17g', v) or v
            parts[#parts + 1] = '$' .. #v .. '\r\n' .. v .. '\r\n'
        end
    end
    return table.concat(parts)
end

local woken, created, heads, urgent = {}, {}, {}, {}
for _, a in ipairs(plan) do
    local group, id = tonumber(ARGV[a]), ARGV[a + 1]
    local due = now + tonumber(ARGV[a + 6])
    if ARGV[a + 7] ~= '' then due = tonumber(ARGV[a + 7]) end
    local key, timeout = ARGV[a + 8], ARGV[a + 9]
    local sequence = redis.call('INCR', KEYS[1])
    local rec = {ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4]), 'PENDING', 0,
                 tonumber(ARGV[a + 5]), 0, now, math.max(due, now), false, false, false, false,
                 false, key ~= '' and key or false, false,
                 timeout ~= '' and tonumber(timeout) or false, tonumber(ARGV[a + 10]),
                 false, false, sequence, false, sequence}
    local offer = due <= now and take_offer(group)
    if offer then
        -- The row names the tag (the worker reads the queue from it, handoff.py); the token is
        -- unique, since a claim's always holds a ':'.
        rec[STATE] = 'RUNNING'
        local row = {}
        lease_to(id, ARGV[2 + group], rec, offer[2], 'h' .. sequence, now, offer[3], row)
        redis.call('ZADD', key_of(4, group, LEASED), num(rec[LEASE_EXPIRES]), id)
        redis.call('RPUSH', offer[1], resp(row))
    elseif due > now then
        rec[STATE] = 'SCHEDULED'
        redis.call('ZADD', key_of(4, group, SCHEDULED_Z), num(due), id)
        woken[group] = (woken[group] or 0) + 1
    else
        if heads[group] == nil then heads[group] = head_priority(4, group) or false end
        local priority = rec[PRIORITY]
        if heads[group] and priority > heads[group] and priority > (urgent[group] or -1) then
            urgent[group] = priority
        end
        redis.call('ZADD', key_of(4, group, READY), num(ready_score(rec)), id)
        woken[group] = (woken[group] or 0) + 1
    end
    created[group] = (created[group] or 0) + 1
    store(key_of(4, group, TASKS), id, rec)
    if key ~= '' then redis.call('HSET', KEYS[2], key, id) end
end
local minute_field = math.floor(now / 60) .. ':enqueued'
for g = 1, ngroups do
    redis.call('SADD', KEYS[3], ARGV[2 + g])
    if urgent[g] then announce_urgent(4, g, urgent[g], heads[g]) end
    if woken[g] then signal(4, g, woken[g]) end
    if created[g] then
        local metrics = 3 + ngroups * GROUP_SIZE + 2 * g
        redis.call('HINCRBY', KEYS[metrics - 1], 'enqueued', created[g])
        -- An hour of retention after the newest minute ends: set when a minute's field is
        -- new, not on every enqueue.
        if redis.call('HINCRBY', KEYS[metrics], minute_field, created[g]) == created[g] then
            redis.call('EXPIRE', KEYS[metrics], 3660)
        end
    end
end
return reply
