-- Shared prelude, prepended to every script by the loader (scripts.py). It only defines
-- functions and constants: it touches no key and builds no key name.
--
-- A task record is a msgpack array (cmsgpack), `false` where a field is empty:
--   1 name  2 payload  3 priority  4 state  5 attempts  6 max_retries  7 worker_lost
--   8 created_at  9 scheduled_at  10 started_at  11 completed_at  12 worker_id  13 error
--   14 result  15 idempotency_key  16 dead_reason  17 timeout_seconds  18 result_ttl_seconds
--   19 lease_token  20 lease_expires_at  21 sequence (place in the ready order; renewed when
--   the task becomes ready again)  22 expires_at  23 number (enqueue order, never changes)
--   24 attempt_errors (JSON text of the last attempts' errors, written by fail.lua; absent
--   until the first failure)
-- Times are epoch seconds (floats). A group is the 11 keys of one queue, in keys.py's order:
--   +0 tasks  +1 ready  +2 scheduled  +3 retrying  +4 leased  +5 done  +6 cancelled  +7 dead
--   +8 signal  +9 urgent  +10 idle
local NAME, PAYLOAD, PRIORITY, STATE, ATTEMPTS, MAX_RETRIES, WORKER_LOST = 1, 2, 3, 4, 5, 6, 7
local CREATED, SCHEDULED, STARTED, COMPLETED, WORKER, ERROR, RESULT = 8, 9, 10, 11, 12, 13, 14
local KEY, DEAD_REASON, TIMEOUT, RESULT_TTL, TOKEN, LEASE_EXPIRES = 15, 16, 17, 18, 19, 20
local SEQUENCE, EXPIRES, NUMBER, ATTEMPT_ERRORS = 21, 22, 23, 24
local GROUP_SIZE = 11
local TASKS, READY, SCHEDULED_Z, RETRYING, LEASED, DONE, CANCELLED, DEAD, SIGNAL, URGENT =
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9
local IDLE = 10
local BAND = 281474976710656 -- 2^48: one priority band of the ready score
local SIGNAL_CAP = 64        -- wake-up tokens kept per queue: enough to wake 64 idle workers
local URGENT_CAP = 16        -- urgent entries kept per queue (a reader that missed some still
                             -- sees a later one, and its claim takes everything above its top)
local INDEX_OF = {PENDING = READY, SCHEDULED = SCHEDULED_Z, FAILED = RETRYING,
                  RUNNING = LEASED, DONE = DONE, CANCELLED = CANCELLED, DEAD = DEAD}

-- The backend's clock: Redis TIME, unless a test passed a clock override (ARGV[1] ~= '').
local function clock_now(override)
    if override ~= '' then return tonumber(override) end
    local t = redis.call('TIME')
    return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- `base` is the index in KEYS of the first key of the first group.
local function key_of(base, group, slot) return KEYS[base + (group - 1) * GROUP_SIZE + slot] end

-- Whether a decoded value has the fields every script relies on, of the right types.
local function readable(rec)
    return type(rec) == 'table' and type(rec[NAME]) == 'string'
        and type(rec[PAYLOAD]) == 'string' and type(rec[PRIORITY]) == 'number'
        and INDEX_OF[rec[STATE]] ~= nil and type(rec[ATTEMPTS]) == 'number'
        and type(rec[MAX_RETRIES]) == 'number' and type(rec[WORKER_LOST]) == 'number'
        and type(rec[CREATED]) == 'number' and type(rec[SEQUENCE]) == 'number'
        and type(rec[RESULT_TTL]) == 'number'
end

-- A stored record that cannot be read (written by hand or by another version, or damaged)
-- decodes to a stand-in instead of an error that would fail every claim of its queue: DEAD
-- with reason decode_error, its raw bytes kept as the payload so nothing is lost. It still
-- sits in the index that listed the record until a transition that takes from that index
-- finds it and buries it there (bury); `undecodable` marks it until then (never stored).
local function decode(packed)
    local ok, rec = pcall(cmsgpack.unpack, packed)
    if ok and readable(rec) then return rec end
    local why = ok and 'not a task record' or tostring(rec)
    return {'', packed, 0, 'DEAD', 0, 0, 0, 0, 0, false, false, false,
            'DecodeError: the stored task record could not be decoded (' .. why ..
            '); its raw bytes are kept as the payload', false, false, 'decode_error', false,
            0, false, false, 0, false, 0, false, undecodable = true}
end

local function load(tasks_key, id)
    local packed = redis.call('HGET', tasks_key, id)
    if not packed then return nil end
    return decode(packed)
end

local function store(tasks_key, id, rec)
    rec.undecodable = nil -- a buried stand-in is stored as a plain DEAD record
    redis.call('HSET', tasks_key, id, cmsgpack.pack(rec))
end

local function ready_score(rec) return (9 - rec[PRIORITY]) * BAND + rec[SEQUENCE] end

-- Times go back as strings: a Lua number in a reply is truncated to an integer.
local function num(v) if v == false or v == nil then return false end
    return string.format('%.17g', v) end

-- Or as whole microseconds, which a reply carries exactly, on the claim's path: formatting
-- five times per leased task as text cost ~3 us of the ~25 us each one held the server.
local function micros(v) if v == false or v == nil then return false end
    return math.floor(v * 1000000 + 0.5) end

-- Moves a stand-in from the index `slot` (where a transition found it) to DEAD, or drops an
-- index entry whose record is gone altogether (`rec` nil).
local function bury(base, group, id, rec, slot, now)
    redis.call('ZREM', key_of(base, group, slot), id)
    if not rec then return end
    rec[COMPLETED] = now
    redis.call('ZADD', key_of(base, group, DEAD), num(now), id)
    store(key_of(base, group, TASKS), id, rec)
end

-- Wake-up tokens: one per task that became PENDING, at most SIGNAL_CAP waiting in the list.
local function signal(base, group, n)
    local key = key_of(base, group, SIGNAL)
    local tokens = {}
    for i = 1, math.min(n, SIGNAL_CAP) do tokens[i] = '1' end
    redis.call('LPUSH', key, unpack(tokens))
    redis.call('LTRIM', key, 0, SIGNAL_CAP - 1)
end

-- The priority of the most urgent task waiting in the group's ready index (nil when empty).
local function head_priority(base, group)
    local head = redis.call('ZRANGE', key_of(base, group, READY), 0, 0, 'WITHSCORES')
    if #head == 0 then return nil end
    return 9 - math.floor(tonumber(head[2]) / BAND)
end

-- Tasks of priority `priority` became PENDING ahead of every task that was waiting (`head`,
-- from head_priority before they were added): busy workers, whose prefetch buffers may hold
-- only lower priorities, read this stream to claim them at once instead of after their
-- buffers drain. Work arriving into an empty ready index is not announced here: the signal
-- list wakes a worker for it, and the stream stays quiet while workers keep up.
local function announce_urgent(base, group, priority, head)
    if head == nil or priority <= head then return end
    redis.call('XADD', key_of(base, group, URGENT), 'MAXLEN', URGENT_CAP, '*', 'p', priority)
end

-- The group holding task `id`: `hint` when given (> 0), else the first group that has it.
local function find_group(base, ngroups, id, hint)
    if hint > 0 then return hint end
    for g = 1, ngroups do
        if redis.call('HEXISTS', key_of(base, g, TASKS), id) == 1 then return g end
    end
    return 0
end

-- Calls visit(g, id, rec) for every task named by the by-ids calling form, ARGV[2..] as
-- (group hint, id) pairs (see find_group), skipping ids that name no task.
local function each_named_task(base, ngroups, visit)
    for a = 2, #ARGV, 2 do
        local id = ARGV[a + 1]
        local g = find_group(base, ngroups, id, tonumber(ARGV[a]))
        local rec = g > 0 and load(key_of(base, g, TASKS), id)
        if rec then visit(g, id, rec) end
    end
end

-- The record of task `id` if `token` still holds its lease (RUNNING, same token), with its
-- group; nil otherwise (unknown id, not RUNNING, or another token): the fencing check every
-- lease-guarded transition makes. `hint` as in find_group.
local function held(base, ngroups, id, token, hint)
    local g = find_group(base, ngroups, id, hint)
    local rec = g > 0 and load(key_of(base, g, TASKS), id)
    if not rec or rec[STATE] ~= 'RUNNING' or rec[TOKEN] ~= token then return nil end
    return rec, g
end

-- A stored task as a reply row (TaskRow's field order, after id and queue; then its number,
-- then its attempt errors).
local function row(id, queue, rec)
    return {id, queue, rec[NAME], rec[PAYLOAD], rec[PRIORITY], rec[STATE], rec[ATTEMPTS],
            rec[MAX_RETRIES], rec[WORKER_LOST], num(rec[CREATED]), num(rec[SCHEDULED]),
            num(rec[STARTED]), num(rec[COMPLETED]), rec[WORKER], rec[ERROR], rec[RESULT],
            rec[KEY], rec[DEAD_REASON], num(rec[TIMEOUT]), rec[NUMBER],
            rec[ATTEMPT_ERRORS] or false}
end

-- The attempt's real start as its worker reported it (ARGV text, '' = not reported), kept
-- between the lease's start and now; a task that waited in a prefetch buffer started after its
-- lease did.
local function set_started(rec, reported, now)
    if reported == '' then return end
    rec[STARTED] = math.max(rec[STARTED] or 0, math.min(tonumber(reported), now))
end

-- Leases `rec` to `worker` (the fields every lease sets; the caller moves it to RUNNING with
-- deadline rec[LEASE_EXPIRES] and stores it), and appends to `out` the row the worker
-- receives, in ClaimedTask's order: id, queue, name, payload, priority, attempts,
-- max_retries, worker_lost, lease_token, then lease_expires_at, created_at, scheduled_at in
-- microseconds, idempotency_key, then timeout_seconds and result_ttl_seconds in microseconds
-- (replies.claimed). Appended in place: a claim's reply grew by copying each row, ~1.5 us a task.
local function lease_to(id, queue, rec, worker, token, now, lease, out)
    rec[ATTEMPTS] = rec[ATTEMPTS] + 1
    rec[WORKER], rec[TOKEN], rec[STARTED] = worker, token, now
    rec[LEASE_EXPIRES] = now + lease
    local n = #out
    out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] =
        id, queue, rec[NAME], rec[PAYLOAD], rec[PRIORITY]
    out[n + 6], out[n + 7], out[n + 8], out[n + 9], out[n + 10] =
        rec[ATTEMPTS], rec[MAX_RETRIES], rec[WORKER_LOST], token, micros(rec[LEASE_EXPIRES])
    out[n + 11], out[n + 12], out[n + 13], out[n + 14], out[n + 15] =
        micros(rec[CREATED]), micros(rec[SCHEDULED]), rec[KEY], micros(rec[TIMEOUT]),
        micros(rec[RESULT_TTL])
end

-- Leaves the index of its current state and enters the index of `state` with `score`.
local function move(base, group, id, rec, state, score)
    redis.call('ZREM', key_of(base, group, INDEX_OF[rec[STATE]]), id)
    rec[STATE] = state
    redis.call('ZADD', key_of(base, group, INDEX_OF[state]), num(score), id)
end

-- The same move, gathered over a batch and written as one ZREM and one ZADD per index (see
-- flush_moves): a claim or an acknowledgement of 128 tasks made 256 calls of one member each.
-- Only for batches that move each task once and read no index they move tasks into or out of
-- before flushing.
local function defer_move(moves, base, group, id, rec, state, score)
    local from = key_of(base, group, INDEX_OF[rec[STATE]])
    local to = key_of(base, group, INDEX_OF[state])
    local out = moves.out[from]
    if not out then out = {}; moves.out[from] = out end
    out[#out + 1] = id
    local into = moves.into[to]
    if not into then into = {}; moves.into[to] = into end
    if score ~= moves.score then -- a batch mostly shares one (a claim's deadline, say)
        moves.score, moves.score_text = score, num(score)
    end
    into[#into + 1] = moves.score_text
    into[#into + 1] = id
    rec[STATE] = state
end

local function new_moves() return {out = {}, into = {}} end

local function flush_moves(moves)
    local CHUNK = 4000 -- arguments per call, well under Lua's stack limit
    for key, ids in pairs(moves.out) do
        for i = 1, #ids, CHUNK do
            redis.call('ZREM', key, unpack(ids, i, math.min(i + CHUNK - 1, #ids)))
        end
    end
    for key, args in pairs(moves.into) do
        for i = 1, #args, CHUNK do
            redis.call('ZADD', key, unpack(args, i, math.min(i + CHUNK - 1, #args)))
        end
    end
    moves.out, moves.into = {}, {}
end
