-- Offers: the idle workers a single new task can wake, so that it wakes one of them, not all.
-- A worker waiting with a free slot and nothing buffered keeps a row per queue it serves,
-- naming its listener's private channel, until a deadline it renews while it waits; it drops
-- the rows when it gets busy or stops. An enqueue of one task due now notifies the channel of
-- the live offer made first (the broadcast channel when there is none): the worker that has
-- been waiting longest, which under a light load is the same worker again and again (its
-- process stays warm: pickup p99 as with one worker process), and under a heavier one rotates,
-- since a worker that got busy offers again behind the others. Without them every worker of a
-- queue woke and claimed for every task, and on a small machine the claims that found nothing
-- took the CPU the one that found it needed (pickup p99 7.0 ms with two idle worker processes,
-- 3.2 ms with one).
--
-- UNLOGGED: offers are worth nothing after a crash (their workers are gone), and writing them
-- to the WAL would cost every idle worker a flush per renewal.
CREATE UNLOGGED TABLE conveyor_offers (
    worker_id  text NOT NULL,
    queue      text NOT NULL,
    channel    text NOT NULL,
    offered_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    PRIMARY KEY (worker_id, queue)
);
CREATE INDEX conveyor_offers_queue ON conveyor_offers (queue, offered_at);
