-- Claim, step 1: delayed tasks and retry waits of these queues that are due become PENDING.
-- Only a due task is ever leased: a delay is never a lease. SKIP LOCKED: two claimers promoting
-- at once never wait for each other; a row the other holds is promoted by the other.
WITH clock AS (
    SELECT coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8) AS now
)
UPDATE conveyor_tasks
SET state = 'PENDING'
WHERE id = ANY(ARRAY(
    SELECT id FROM conveyor_tasks, clock
    WHERE state IN ('SCHEDULED', 'FAILED') AND queue = ANY(%(queues)s::text[])
      AND scheduled_at <= clock.now
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
))
