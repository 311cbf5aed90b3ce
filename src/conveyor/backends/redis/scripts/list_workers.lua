-- List workers (a read): every registered worker, unordered (the client sorts by start time).
--
-- KEYS[1]  conveyor:workers            hash, worker id -> msgpack row
-- Returns: a flat array, 8 per worker: id, host, pid, {queues...}, concurrency, busy,
--   started_at, last_seen
local reply = {}
local workers = redis.call('HGETALL', KEYS[1])
for i = 1, #workers, 2 do
    local w = cmsgpack.unpack(workers[i + 1])
    local r = {workers[i], w[1], w[2], w[3], w[4], w[5], num(w[6]), num(w[7])}
    for _, v in ipairs(r) do reply[#reply + 1] = v end
end
return reply
