-- DeleteTasks: delete tasks by id in any state but RUNNING (its worker holds a lease on it; it
-- can be deleted once it has finished). A task lives in its queue's (or partition's) record
-- hash, in the one index of its state, and in the idempotency ledger when it has a key: all
-- three go. The ledger entry only when it still names this task (a key can have moved on to
-- a later task after an earlier one was pruned).
--
-- KEYS[1]  conveyor:idempotency        hash, key -> task id (per tag on a cluster)
-- KEYS[2..] one group per queue (conveyor:{q}:tasks ... :signal, see keys.py)
-- ARGV[1]  now override (unused: deleting reads no clock; kept for the by-ids calling form)
-- then 2 per id: group (1-based; 0 = look in every group), id
-- Returns: the ids that were deleted
local ngroups = (#KEYS - 1) / GROUP_SIZE
local deleted = {}
each_named_task(2, ngroups, function(g, id, rec)
    if rec[STATE] ~= 'RUNNING' then
        if rec[KEY] and redis.call('HGET', KEYS[1], rec[KEY]) == id then
            redis.call('HDEL', KEYS[1], rec[KEY])
        end
        redis.call('ZREM', key_of(2, g, INDEX_OF[rec[STATE]]), id)
        redis.call('HDEL', key_of(2, g, TASKS), id)
        deleted[#deleted + 1] = id
    end
end)
return deleted
