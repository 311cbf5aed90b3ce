-- Enqueue by COPY, step 1 (a batch without idempotency keys): the backend's clock for the whole
-- batch, from which the caller derives each row's state and due time, and one NOTIFY per queue
-- written (sent at commit, and only then; for delayed tasks too, as enqueue.sql explains).
SELECT coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8),
       (SELECT count(pg_notify('conveyor_work', q)) FROM unnest(%(queues)s::text[]) AS q)
