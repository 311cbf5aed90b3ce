-- Enqueue, deduplicated: the task that already holds this idempotency key.
SELECT id FROM conveyor_tasks WHERE idempotency_key = :idempotency_key
