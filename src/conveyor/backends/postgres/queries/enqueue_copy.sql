-- Enqueue by COPY, step 2: the rows, streamed in binary. No expression runs per row and no
-- JSON is parsed: a large batch costs the heap and index inserts and little else. Every row is
-- created (no idempotency key can conflict), or the transaction fails as a whole.
COPY conveyor_tasks (
    id, name, queue, payload, priority, state, max_retries, created_at, scheduled_at,
    timeout_seconds, result_ttl_seconds
) FROM STDIN (FORMAT BINARY)
