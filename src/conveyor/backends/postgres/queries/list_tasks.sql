SELECT id, name, queue, payload, priority, state, attempts, max_retries, worker_lost, created_at,
       scheduled_at, started_at, completed_at, worker_id, error, result, idempotency_key,
       dead_reason, timeout_seconds, attempt_errors::text
FROM conveyor_tasks
WHERE (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(state)s::text IS NULL OR state = %(state)s::text)
ORDER BY seq
LIMIT %(limit)s OFFSET %(offset)s
