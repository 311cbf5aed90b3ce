-- Complete: RUNNING -> DONE with its result, only for the holder of the current lease token.
-- The task is kept (for results and idempotency) until completed_at + result_ttl, then pruned.
--
-- KEYS[1..] one group per queue (conveyor:{q}:tasks ... :signal, see keys.py)
-- ARGV[1]  now override, epoch seconds ('' = Redis TIME; tests only)
-- then 6 per completion: group (1-based; 0 = look in every group), id, lease token,
--   has result ('1'/'0'), result bytes, started at (the attempt's real start, epoch seconds;
--   '' = the lease's start stays)
-- Returns: the ids whose lease was lost (unknown id, not RUNNING, or another token): unchanged
local now = clock_now(ARGV[1])
local ngroups = #KEYS / GROUP_SIZE
local lost, moves = {}, new_moves()
for a = 2, #ARGV, 6 do
    local id, token = ARGV[a + 1], ARGV[a + 2]
    local rec, g = held(1, ngroups, id, token, tonumber(ARGV[a]))
    if not rec then
        lost[#lost + 1] = id
    else
        rec[RESULT] = ARGV[a + 3] == '1' and ARGV[a + 4] or false
        set_started(rec, ARGV[a + 5], now)
        rec[COMPLETED], rec[EXPIRES] = now, now + rec[RESULT_TTL]
        rec[TOKEN], rec[LEASE_EXPIRES] = false, false
        defer_move(moves, 1, g, id, rec, 'DONE', rec[EXPIRES])
        store(key_of(1, g, TASKS), id, rec)
    end
end
flush_moves(moves)
return lost
