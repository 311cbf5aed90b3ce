SELECT queue, state, count(*) AS n, min(scheduled_at) FILTER (WHERE state = 'PENDING')
FROM conveyor_tasks
GROUP BY queue, state
