-- Purge: delete every task of the given queues in one state (an operator's action; RUNNING is
-- refused above the backend). Their idempotency keys are released.
--
-- KEYS[1]  conveyor:idempotency        hash, key -> task id
-- KEYS[2..] one group per queue (conveyor:{q}:tasks ... :signal, see keys.py)
-- ARGV[1]  state
-- Returns: the number of tasks deleted
local ngroups = (#KEYS - 1) / GROUP_SIZE
local slot = INDEX_OF[ARGV[1]]
if not slot then return 0 end
local deleted = 0
for g = 1, ngroups do
    local index = key_of(2, g, slot)
    for _, id in ipairs(redis.call('ZRANGE', index, 0, -1)) do
        local rec = load(key_of(2, g, TASKS), id)
        if rec and rec[KEY] and redis.call('HGET', KEYS[1], rec[KEY]) == id then
            redis.call('HDEL', KEYS[1], rec[KEY])
        end
        redis.call('HDEL', key_of(2, g, TASKS), id)
        deleted = deleted + 1
    end
    redis.call('DEL', index)
end
return deleted
