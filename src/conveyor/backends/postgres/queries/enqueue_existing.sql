-- Enqueue, deduplicated: the tasks that already hold these idempotency keys.
SELECT idempotency_key, id FROM conveyor_tasks WHERE idempotency_key = ANY(%(keys)s::text[])
