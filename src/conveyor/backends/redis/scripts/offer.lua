-- Offer: a worker waiting for work of these queues offers to take a task at once, or withdraws
-- that offer. An offer is the worker's member in each queue's idle zset, scored by its
-- deadline (backend clock); enqueue.lua takes the oldest live offer, leases a task due now to
-- its worker and pushes it into the worker's inbox (see handoff.py). A paused queue takes no
-- offer (pausing deletes them). Offers past their deadline are dropped on the way.
--
-- KEYS[2q-1], KEYS[2q]  per queue q: conveyor:{q}:idle (zset), conveyor:{q}:paused (string)
-- ARGV[1]  now override, epoch seconds ('' = Redis TIME; tests only)
-- ARGV[2]  seconds the offers hold (0 = withdraw them)
-- ARGV[3..] per queue, the worker's member (keys.offer), in KEYS order
-- Returns: the number of queues that hold an offer of the worker now
local now = clock_now(ARGV[1])
local seconds = tonumber(ARGV[2])
local held = 0
for q = 1, #KEYS / 2 do
    local idle, paused, member = KEYS[2 * q - 1], KEYS[2 * q], ARGV[2 + q]
    redis.call('ZREMRANGEBYSCORE', idle, '-inf', num(now))
    if seconds > 0 and redis.call('EXISTS', paused) == 0 then
        redis.call('ZADD', idle, num(now + seconds), member)
        held = held + 1
    else
        redis.call('ZREM', idle, member)
    end
end
return held
