SELECT queue, state, count(*) AS n, min(CASE WHEN state = 'PENDING' THEN scheduled_at END)
FROM conveyor_tasks
GROUP BY queue, state
