-- Fail: RUNNING -> FAILED (a retry wait, due at now + retry_in; never a lease) or, without a
-- retry time, -> DEAD with a reason. Only for the holder of the current lease token.
-- A retry wakes idle workers so one due at once is not left waiting. The attempt's error (its
-- first ARGV[3] bytes, cut on a character boundary) joins the last ARGV[2] in the record's
-- attempt errors (JSON text, oldest first).
--
-- KEYS[1..] one group per queue (conveyor:{q}:tasks ... :signal, see keys.py)
-- ARGV[1]  now override, epoch seconds ('' = Redis TIME; tests only)
-- ARGV[2]  attempt errors kept;  ARGV[3] bytes kept of each
-- then 8 per failure: group (1-based; 0 = look in every group), id, lease token, error text,
--   retry in seconds ('' = dead), dead reason ('' = none), worker lost ('1'/'0'), started at
--   (as in complete.lua)
-- Returns: the ids whose lease was lost (unknown id, not RUNNING, or another token): unchanged
local now = clock_now(ARGV[1])
local kept, cut = tonumber(ARGV[2]), tonumber(ARGV[3])
local ngroups = #KEYS / GROUP_SIZE
local lost = {}

-- The first `n` bytes of `s`, less a UTF-8 sequence the cut would split.
local function prefix(s, n)
    if #s <= n then return s end
    local b = string.byte(s, n + 1)
    while n > 0 and b >= 128 and b < 192 do
        n = n - 1
        b = string.byte(s, n + 1)
    end
    return string.sub(s, 1, n)
end

for a = 4, #ARGV, 8 do
    local id, token = ARGV[a + 1], ARGV[a + 2]
    local rec, g = held(1, ngroups, id, token, tonumber(ARGV[a]))
    if not rec then
        lost[#lost + 1] = id
    else
        rec[ERROR] = ARGV[a + 3]
        set_started(rec, ARGV[a + 7], now)
        local history = rec[ATTEMPT_ERRORS] and cjson.decode(rec[ATTEMPT_ERRORS]) or {}
        while #history >= kept do table.remove(history, 1) end
        history[#history + 1] = {attempt = rec[ATTEMPTS], worker = rec[WORKER] or cjson.null,
                                 ended_at = now, error = prefix(ARGV[a + 3], cut)}
        rec[ATTEMPT_ERRORS] = cjson.encode(history)
        rec[DEAD_REASON] = ARGV[a + 5] ~= '' and ARGV[a + 5] or false
        rec[WORKER_LOST] = rec[WORKER_LOST] + tonumber(ARGV[a + 6])
        rec[TOKEN], rec[LEASE_EXPIRES] = false, false
        if ARGV[a + 4] == '' then
            rec[COMPLETED] = now
            move(1, g, id, rec, 'DEAD', now)
        else
            rec[SCHEDULED] = now + tonumber(ARGV[a + 4])
            rec[COMPLETED] = false
            move(1, g, id, rec, 'FAILED', rec[SCHEDULED])
            signal(1, g, 1)
        end
        store(key_of(1, g, TASKS), id, rec)
    end
end
return lost
