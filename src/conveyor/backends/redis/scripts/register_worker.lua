-- Register (or refresh) a worker: a new one is written whole; a known one keeps its host, pid,
-- queues and start time and refreshes its slots and last-seen time (the heartbeat).
--
-- KEYS[1]  conveyor:workers            hash, worker id -> msgpack
--          {host, pid, {queues...}, concurrency, busy, started_at, last_seen}
-- ARGV[1]  now override, epoch seconds ('' = Redis TIME; tests only)
-- ARGV[2]  worker id;  ARGV[3] host;  ARGV[4] pid;  ARGV[5] concurrency;  ARGV[6] busy
-- ARGV[7]  started_at, epoch seconds;  ARGV[8 ..] queue names
-- Returns: nothing
local now = clock_now(ARGV[1])
local known = redis.call('HGET', KEYS[1], ARGV[2])
local w
if known then
    w = cmsgpack.unpack(known)
    w[4], w[5], w[7] = tonumber(ARGV[5]), tonumber(ARGV[6]), now
else
    local queues = {}
    for i = 8, #ARGV do queues[#queues + 1] = ARGV[i] end
    w = {ARGV[3], tonumber(ARGV[4]), queues, tonumber(ARGV[5]), tonumber(ARGV[6]),
         tonumber(ARGV[7]), now}
end
redis.call('HSET', KEYS[1], ARGV[2], cmsgpack.pack(w))
return false
