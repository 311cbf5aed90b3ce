-- Prune: delete DONE and CANCELLED tasks whose retention ran out (expires_at < now), releasing
-- their idempotency keys, and forget workers silent for longer than the given time. DEAD
-- tasks wait for an operator; live tasks are never touched.
--
-- KEYS[1]  conveyor:idempotency        hash, key -> task id
-- KEYS[2]  conveyor:workers            hash, worker id -> msgpack row
-- KEYS[3..] one group per queue (conveyor:{q}:tasks ... :signal, see keys.py)
-- ARGV[1]  now override, epoch seconds ('' = Redis TIME; tests only)
-- ARGV[2]  worker silence seconds;  ARGV[3] limit (tasks deleted at most)
-- Returns: the number of tasks deleted
local now = clock_now(ARGV[1])
local silence, left = tonumber(ARGV[2]), tonumber(ARGV[3])
local ngroups = (#KEYS - 2) / GROUP_SIZE
local deleted = 0
for g = 1, ngroups do
    for _, slot in ipairs({DONE, CANCELLED}) do
        if left <= 0 then break end
        local index = key_of(3, g, slot)
        local expired = redis.call('ZRANGEBYSCORE', index, '-inf', '(' .. num(now),
                                   'LIMIT', 0, left)
        for _, id in ipairs(expired) do
            local rec = load(key_of(3, g, TASKS), id)
            if rec and rec[KEY] and redis.call('HGET', KEYS[1], rec[KEY]) == id then
                redis.call('HDEL', KEYS[1], rec[KEY])
            end
            redis.call('HDEL', key_of(3, g, TASKS), id)
            redis.call('ZREM', index, id)
        end
        deleted = deleted + #expired
        left = left - #expired
    end
end
local workers = redis.call('HGETALL', KEYS[2])
for i = 1, #workers, 2 do
    local w = cmsgpack.unpack(workers[i + 1])
    if w[7] < now - silence then redis.call('HDEL', KEYS[2], workers[i]) end
end
return deleted
