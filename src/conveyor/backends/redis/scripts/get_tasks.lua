-- Get tasks by id (a read).
--
-- KEYS[1..] one group per queue (conveyor:{q}:tasks ... :signal, see keys.py)
-- ARGV[1 .. G] the groups' queue names; ARGV[G+1 ..] task ids
-- Returns: one row per id found (see _record.lua `row`: id, queue, then TaskRow's fields and
--   the sequence number)
local ngroups = #KEYS / GROUP_SIZE
local reply = {}
for a = ngroups + 1, #ARGV do
    local id = ARGV[a]
    local g = find_group(1, ngroups, id, 0)
    if g > 0 then reply[#reply + 1] = row(id, ARGV[g], load(key_of(1, g, TASKS), id)) end
end
return reply
