-- List tasks (a read), one page of one queue's scan: the client merges queues and pages and
-- sorts by sequence (enqueue order). A page is bounded so a big queue never blocks Redis long.
--
-- KEYS[1..10] the group of one queue (conveyor:{q}:tasks ... :signal, see keys.py)
-- ARGV[1]  queue name;  ARGV[2] state ('' = every state);  ARGV[3] cursor ('0' to start)
-- ARGV[4]  page size
-- Returns: {next cursor ('0' when done), {row, row, ...}} (rows as in get_tasks.lua)
local state, cursor, count = ARGV[2], ARGV[3], tonumber(ARGV[4])
local rows = {}
if state == '' then
    local page = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', count)
    for i = 1, #page[2], 2 do
        rows[#rows + 1] = row(page[2][i], ARGV[1], decode(page[2][i + 1]))
    end
    return {page[1], rows}
end
local slot = INDEX_OF[state]
if not slot then return {'0', rows} end
local start = tonumber(cursor)
local ids = redis.call('ZRANGE', KEYS[1 + slot], start, start + count - 1)
for _, id in ipairs(ids) do
    local rec = load(KEYS[1], id)
    if rec and rec[STATE] == state then rows[#rows + 1] = row(id, ARGV[1], rec) end
end
if #ids < count then return {'0', rows} end
return {tostring(start + count), rows}
