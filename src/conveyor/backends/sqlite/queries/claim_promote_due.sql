-- Claim, step 1: delayed tasks and retry waits that are due become PENDING. Only a due task is
-- ever leased: a delay is never a lease.
UPDATE conveyor_tasks
SET state = 'PENDING'
WHERE state IN ('SCHEDULED', 'FAILED') AND queue = :queue AND scheduled_at <= :now
