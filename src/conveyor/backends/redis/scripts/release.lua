-- Release: a prefetched task that never started goes back to PENDING at its old place in the
-- queue (its sequence is kept), and the claim's attempt is taken back, since nothing ran.
-- Only for the holder of the lease token.
--
-- KEYS[1..] one group per queue (conveyor:{q}:tasks ... :signal, see keys.py)
-- ARGV[1]  now override (unused: a release stamps no time; kept so every script reads alike)
-- then 3 per lease: group (1-based; 0 = look in every group), id, lease token
-- Returns: the ids whose lease was lost (unknown id, not RUNNING, or another token): unchanged
local ngroups = #KEYS / GROUP_SIZE
local lost = {}
for a = 2, #ARGV, 3 do
    local id, token = ARGV[a + 1], ARGV[a + 2]
    local rec, g = held(1, ngroups, id, token, tonumber(ARGV[a]))
    if not rec then
        lost[#lost + 1] = id
    else
        rec[ATTEMPTS] = rec[ATTEMPTS] - 1
        rec[WORKER], rec[STARTED], rec[TOKEN], rec[LEASE_EXPIRES] = false, false, false, false
        move(1, g, id, rec, 'PENDING', ready_score(rec))
        store(key_of(1, g, TASKS), id, rec)
        signal(1, g, 1)
    end
end
return lost
