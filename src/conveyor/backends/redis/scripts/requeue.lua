-- Requeue: a DEAD or CANCELLED task goes back to PENDING with a fresh retry budget (attempts
-- and worker_lost reset). Never a DONE task: its idempotency key promises a single run.
--
-- KEYS[1]  conveyor:sequence           string, the sequence counter
-- KEYS[2..] one group per queue (conveyor:{q}:tasks ... :signal, see keys.py)
-- ARGV[1]  now override, epoch seconds ('' = Redis TIME; tests only)
-- then 2 per id: group (1-based; 0 = look in every group), id
-- Returns: the ids that went back to PENDING
local now = clock_now(ARGV[1])
local ngroups = (#KEYS - 1) / GROUP_SIZE
local requeued = {}
each_named_task(2, ngroups, function(g, id, rec)
    if rec[STATE] == 'DEAD' or rec[STATE] == 'CANCELLED' then
        rec[ATTEMPTS], rec[WORKER_LOST], rec[SCHEDULED] = 0, 0, now
        rec[STARTED], rec[COMPLETED], rec[EXPIRES] = false, false, false
        rec[DEAD_REASON], rec[WORKER] = false, false
        rec[SEQUENCE] = redis.call('INCR', KEYS[1])
        move(2, g, id, rec, 'PENDING', ready_score(rec))
        store(key_of(2, g, TASKS), id, rec)
        signal(2, g, 1)
        requeued[#requeued + 1] = id
    end
end)
return requeued
