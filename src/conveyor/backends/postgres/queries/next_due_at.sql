-- The earliest due time of a delayed task or retry wait in these queues: one index probe per
-- queue (the partial "waiting" index is ordered by due time within a queue).
SELECT min(due.at)
FROM unnest(%(queues)s::text[]) AS q(name)
CROSS JOIN LATERAL (
    SELECT min(scheduled_at) AS at FROM conveyor_tasks
    WHERE state IN ('SCHEDULED', 'FAILED') AND queue = q.name
) AS due
