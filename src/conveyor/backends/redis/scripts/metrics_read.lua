-- Metrics (a read): each queue's totals, and its per-minute counts of the minutes asked for.
--
-- KEYS[2g-1] conveyor:{q}:totals       hash, metric name -> total since the beginning
-- KEYS[2g]   conveyor:{q}:minutes      hash, '<minute>:<name>' -> count of that minute
-- ARGV[1]  first minute;  ARGV[2] last minute (floor(epoch / 60))
-- Returns: per queue, {totals as a flat name/value array, minutes as a flat field/value array}
local since, last = tonumber(ARGV[1]), tonumber(ARGV[2])
local reply = {}
for g = 1, #KEYS / 2 do
    local window = {}
    local all = redis.call('HGETALL', KEYS[2 * g])
    for i = 1, #all, 2 do
        local minute = tonumber(string.match(all[i], '^(%d+):'))
        if minute and minute >= since and minute <= last then
            window[#window + 1] = all[i]
            window[#window + 1] = all[i + 1]
        end
    end
    reply[g] = {redis.call('HGETALL', KEYS[2 * g - 1]), window}
end
return reply
