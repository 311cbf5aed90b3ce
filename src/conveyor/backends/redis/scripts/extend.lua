-- Extend (heartbeat): push the lease deadline of RUNNING tasks to now + lease, only for the
-- holder of the lease token.
--
-- KEYS[1..] one group per queue (conveyor:{q}:tasks ... :signal, see keys.py)
-- ARGV[1]  now override, epoch seconds ('' = Redis TIME; tests only)
-- ARGV[2]  lease seconds
-- then 3 per lease: group (1-based; 0 = look in every group), id, lease token
-- Returns: the ids whose lease was lost (unknown id, not RUNNING, or another token): unchanged
local now = clock_now(ARGV[1])
local deadline = now + tonumber(ARGV[2])
local ngroups = #KEYS / GROUP_SIZE
local lost = {}
for a = 3, #ARGV, 3 do
    local id, token = ARGV[a + 1], ARGV[a + 2]
    local rec, g = held(1, ngroups, id, token, tonumber(ARGV[a]))
    if not rec then
        lost[#lost + 1] = id
    else
        rec[LEASE_EXPIRES] = deadline
        move(1, g, id, rec, 'RUNNING', deadline)
        store(key_of(1, g, TASKS), id, rec)
    end
end
return lost
