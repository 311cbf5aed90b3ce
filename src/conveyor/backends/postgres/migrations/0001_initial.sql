-- Conveyor schema, version 1, PostgreSQL. Tables go to the first schema of the connection's
-- search_path. Times are double precision seconds since the Unix epoch, as in SQLite, so the
-- queries of both dialects stay parallel; "now" is the server's clock_timestamp().
CREATE TABLE conveyor_tasks (
    seq                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- FIFO within a priority
    id                  text NOT NULL UNIQUE,
    name                text NOT NULL,
    queue               text NOT NULL,
    payload             bytea NOT NULL,                  -- msgpack [args, kwargs]
    priority            integer NOT NULL,
    state               text NOT NULL,
    attempts            integer NOT NULL DEFAULT 0,      -- runs started, the current one included
    max_retries         integer NOT NULL,
    worker_lost         integer NOT NULL DEFAULT 0,      -- leases that ran out without a heartbeat
    created_at          double precision NOT NULL,
    scheduled_at        double precision NOT NULL,       -- when it became (or becomes) due
    started_at          double precision,
    completed_at        double precision,
    worker_id           text,
    lease_token         text,                            -- fencing token of the current attempt
    lease_expires_at    double precision,
    error               text,
    result              bytea,
    idempotency_key     text,
    dead_reason         text,
    timeout_seconds     double precision,
    result_ttl_seconds  double precision NOT NULL,
    expires_at          double precision                 -- finished tasks: when the pruner may delete
)
-- A queue table churns: every task is inserted, updated three or four times and deleted. Vacuum
-- it early so dead index entries do not pile up in front of the claim's index scans.
WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02,
      autovacuum_vacuum_insert_scale_factor = 0.02);

-- An idempotency key names one task for as long as that task's row lives.
CREATE UNIQUE INDEX conveyor_tasks_idempotency
    ON conveyor_tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;
-- Claims by priority, then FIFO. Partial, so finished and waiting rows cost the claim nothing:
-- its cost follows the ready backlog of one queue, not the size of the table.
CREATE INDEX conveyor_tasks_ready
    ON conveyor_tasks (queue, priority DESC, seq) WHERE state = 'PENDING';
-- The starvation share: the oldest ready task whatever its priority.
CREATE INDEX conveyor_tasks_ready_age
    ON conveyor_tasks (queue, scheduled_at, seq) WHERE state = 'PENDING';
-- Delayed tasks and retry waits, promoted once due.
CREATE INDEX conveyor_tasks_waiting
    ON conveyor_tasks (queue, scheduled_at) WHERE state IN ('SCHEDULED', 'FAILED');
-- Lease recovery.
CREATE INDEX conveyor_tasks_leases
    ON conveyor_tasks (lease_expires_at) WHERE state = 'RUNNING';
-- Pruning of finished tasks.
CREATE INDEX conveyor_tasks_expiry
    ON conveyor_tasks (expires_at) WHERE expires_at IS NOT NULL;
-- Listings and stats per queue and state.
CREATE INDEX conveyor_tasks_queue_state ON conveyor_tasks (queue, state);

CREATE TABLE conveyor_workers (
    id           text PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    queues       text[] NOT NULL,
    concurrency  integer NOT NULL,
    busy         integer NOT NULL,
    started_at   double precision NOT NULL,
    last_seen    double precision NOT NULL
);
