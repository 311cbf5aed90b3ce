-- Enqueue: a new task, PENDING when due now, SCHEDULED when due later.
-- A task with an idempotency key that already names a live task is not written (the caller then
-- reads the existing id with enqueue_existing.sql, in the same transaction).
INSERT INTO conveyor_tasks (
    id, name, queue, payload, priority, state, max_retries, created_at, scheduled_at,
    idempotency_key, timeout_seconds, result_ttl_seconds
) VALUES (
    :id, :name, :queue, :payload, :priority,
    CASE WHEN :due > :now THEN 'SCHEDULED' ELSE 'PENDING' END,
    :max_retries, :now, max(:due, :now), :idempotency_key, :timeout_seconds, :result_ttl_seconds
)
ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
