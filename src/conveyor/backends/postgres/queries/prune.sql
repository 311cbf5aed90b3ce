-- Prune: finished tasks whose retention ran out (DONE and CANCELLED; DEAD waits for an
-- operator), a bounded batch at a time. SKIP LOCKED and the partial expiry index: pruning never
-- waits for, nor blocks, a claim.
WITH clock AS (
    SELECT coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8) AS now
)
DELETE FROM conveyor_tasks
WHERE id = ANY(ARRAY(
    SELECT id FROM conveyor_tasks, clock
    WHERE expires_at < clock.now AND state IN ('DONE', 'CANCELLED')
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
))
