-- Pause queue: set (pause) or delete (resume) the queue's pause flag, which every claim reads
-- inside its own script. No task moves. Pausing drops the offers of waiting workers (no task is
-- handed over while paused); resuming pushes a wake-up token, so an idle worker claims the
-- waiting tasks at once. The queue joins the registry, so a paused queue with no task
-- still shows in the stats.
--
-- KEYS[1]  conveyor:{q}:paused         string, present while paused
-- KEYS[2]  conveyor:{q}:signal         list, wake-up tokens
-- KEYS[3]  conveyor:queues             set, the queue registry
-- KEYS[4]  conveyor:{q}:idle           zset, the offers of waiting workers
-- ARGV[1]  the queue name;  ARGV[2] 1 = pause, 0 = resume
-- Returns: nothing
if ARGV[2] == '1' then
    redis.call('SET', KEYS[1], '1')
    redis.call('DEL', KEYS[4])
else
    redis.call('DEL', KEYS[1])
    redis.call('LPUSH', KEYS[2], '1')
    redis.call('LTRIM', KEYS[2], 0, SIGNAL_CAP - 1)
end
redis.call('SADD', KEYS[3], ARGV[1])
