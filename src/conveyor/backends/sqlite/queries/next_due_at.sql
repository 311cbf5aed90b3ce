-- The earliest due time of a delayed task or retry wait in one queue.
SELECT min(scheduled_at) FROM conveyor_tasks
WHERE state IN ('SCHEDULED', 'FAILED') AND queue = :queue
