SELECT id, name, queue, payload, priority, state, attempts, max_retries, worker_lost, created_at,
       scheduled_at, started_at, completed_at, worker_id, error, result, idempotency_key,
       dead_reason, timeout_seconds, attempt_errors
FROM conveyor_tasks WHERE id = :id
