-- Fewer indexes for the hot path to maintain. A claim and a completion each change `state`,
-- which every partial index keys on, so neither update can be HOT: each writes a new entry into
-- every index whose predicate the new row version matches. Before this migration that was 4
-- entries per claim (seq, id, (queue, state), leases) and 4 per completion (seq, id,
-- (queue, state), expiry), plus 5 at enqueue; after it, 2, 2 and 3.
--
-- The primary key moves from seq to id: every transition finds its rows by id (the claim's
-- UPDATE too, from the ids its SKIP LOCKED scan picked), so a second unique index on seq was
-- only ever kept up to date. seq stays, unindexed on its own: the FIFO key inside the claim's
-- partial indexes, and the order of listings.
-- The key compares bytewise (COLLATE "C"): ids are ASCII UUIDs that nothing sorts for display,
-- and every probe and insert of the key index then skips the locale's strcoll.
ALTER TABLE conveyor_tasks DROP CONSTRAINT conveyor_tasks_pkey;
ALTER TABLE conveyor_tasks DROP CONSTRAINT conveyor_tasks_id_key;
ALTER TABLE conveyor_tasks ALTER COLUMN id TYPE text COLLATE "C";
ALTER TABLE conveyor_tasks ADD CONSTRAINT conveyor_tasks_pkey PRIMARY KEY (id);

-- (queue, state) served the listings and the stats; it took an entry at every transition. The
-- stats read the table once either way (a count of every row); listings of the states that pile
-- up rarely and are looked for by hand (DLQ, cancelled, delayed, retry waits) get a partial
-- index that the enqueue -> claim -> complete path never touches. PENDING, RUNNING and DONE
-- listings are served by the claim, lease and expiry indexes or a scan (see docs/backends.md).
DROP INDEX conveyor_tasks_queue_state;
CREATE INDEX conveyor_tasks_parked
    ON conveyor_tasks (state, queue, seq)
    WHERE state IN ('SCHEDULED', 'FAILED', 'DEAD', 'CANCELLED');
