-- Cancel: a task that has not started (SCHEDULED, PENDING) or waits for a retry (FAILED)
-- becomes CANCELLED; it is kept until completed_at + result_ttl, then pruned.
--
-- KEYS[1..] one group per queue (conveyor:{q}:tasks ... :signal, see keys.py), then per queue
--           its metrics, conveyor:{q}:totals and conveyor:{q}:minutes (`cancelled` + 1 each)
-- ARGV[1]  now override, epoch seconds ('' = Redis TIME; tests only)
-- then 2 per id: group (1-based; 0 = look in every group), id
-- Returns: the ids that were cancelled
local now = clock_now(ARGV[1])
local ngroups = #KEYS / (GROUP_SIZE + 2)
local minute_field = math.floor(now / 60) .. ':cancelled'
local cancellable = {SCHEDULED = true, PENDING = true, FAILED = true}
local cancelled = {}
for a = 2, #ARGV, 2 do
    local id = ARGV[a + 1]
    local g = find_group(1, ngroups, id, tonumber(ARGV[a]))
    local rec = g > 0 and load(key_of(1, g, TASKS), id)
    if rec and cancellable[rec[STATE]] then
        rec[COMPLETED], rec[EXPIRES] = now, now + rec[RESULT_TTL]
        move(1, g, id, rec, 'CANCELLED', rec[EXPIRES])
        store(key_of(1, g, TASKS), id, rec)
        cancelled[#cancelled + 1] = id
        local metrics = ngroups * GROUP_SIZE + 2 * g
        redis.call('HINCRBY', KEYS[metrics - 1], 'cancelled', 1)
        redis.call('HINCRBY', KEYS[metrics], minute_field, 1)
        redis.call('EXPIRE', KEYS[metrics], 3660) -- an hour of retention, then a minute
    end
end
return cancelled
