-- Record metrics: add each count to the queue's total and to its minute, then drop the queue's
-- per-minute fields older than the retention (at most once a minute per queue: the `pruned`
-- field remembers the last minute it ran) and push the minutes hash's expiry out, so a queue
-- that goes quiet leaves nothing behind after the retention. Called with no count (by Prune), it
-- only prunes.
--
-- KEYS[2g-1] conveyor:{q}:totals       hash, metric name -> total since the beginning
-- KEYS[2g]   conveyor:{q}:minutes      hash, '<minute>:<name>' -> count of that minute
-- ARGV[1]  now override, epoch seconds ('' = Redis TIME; tests only)
-- ARGV[2]  retention seconds of the per-minute counts
-- then 4 per count: group g (1-based), minute (floor(epoch / 60)), name, value
-- Returns: nothing
local now = clock_now(ARGV[1])
local retention = tonumber(ARGV[2])
for i = 3, #ARGV, 4 do
    local g, name, value = tonumber(ARGV[i]), ARGV[i + 2], ARGV[i + 3]
    redis.call('HINCRBYFLOAT', KEYS[2 * g - 1], name, value)
    redis.call('HINCRBYFLOAT', KEYS[2 * g], ARGV[i + 1] .. ':' .. name, value)
end
local current = math.floor(now / 60)
local oldest_kept = math.floor((now - retention) / 60)
for g = 1, #KEYS / 2 do
    local minutes = KEYS[2 * g]
    if tonumber(redis.call('HGET', minutes, 'pruned') or '0') < current then
        local old = {}
        for _, field in ipairs(redis.call('HKEYS', minutes)) do
            local minute = tonumber(string.match(field, '^(%d+):'))
            if minute and minute < oldest_kept then old[#old + 1] = field end
        end
        for first = 1, #old, 1000 do
            redis.call('HDEL', minutes, unpack(old, first, math.min(first + 999, #old)))
        end
        if redis.call('EXISTS', minutes) == 1 then
            redis.call('HSET', minutes, 'pruned', current)
        end
    end
    if redis.call('EXISTS', minutes) == 1 then
        redis.call('EXPIRE', minutes, math.ceil(retention) + 60)
    end
end
