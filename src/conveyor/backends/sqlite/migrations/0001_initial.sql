-- Conveyor schema, version 1. Times are REAL seconds since the Unix epoch in every dialect, so
-- the queries of the SQLite and PostgreSQL backends stay parallel.
CREATE TABLE conveyor_tasks (
    seq                 INTEGER PRIMARY KEY,          -- insertion order: FIFO within a priority
    id                  TEXT NOT NULL UNIQUE,
    name                TEXT NOT NULL,
    queue               TEXT NOT NULL,
    payload             BLOB NOT NULL,                -- msgpack [args, kwargs]
    priority            INTEGER NOT NULL,
    state               TEXT NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,   -- runs started, the current one included
    max_retries         INTEGER NOT NULL,
    worker_lost         INTEGER NOT NULL DEFAULT 0,   -- leases that ran out without a heartbeat
    created_at          REAL NOT NULL,
    scheduled_at        REAL NOT NULL,                -- when it became (or becomes) due
    started_at          REAL,
    completed_at        REAL,
    worker_id           TEXT,
    lease_token         TEXT,                         -- fencing token of the current attempt
    lease_expires_at    REAL,
    error               TEXT,
    result              BLOB,
    idempotency_key     TEXT,
    dead_reason         TEXT,
    timeout_seconds     REAL,
    result_ttl_seconds  REAL NOT NULL,
    expires_at          REAL                          -- finished tasks: when the pruner may delete
);

-- An idempotency key names one task for as long as that task's row lives.
CREATE UNIQUE INDEX conveyor_tasks_idempotency
    ON conveyor_tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;
-- Claims by priority, then FIFO. Partial, so finished rows cost the claim nothing.
CREATE INDEX conveyor_tasks_ready
    ON conveyor_tasks (queue, priority DESC, seq) WHERE state = 'PENDING';
-- The starvation share: the oldest ready task whatever its priority.
CREATE INDEX conveyor_tasks_ready_age
    ON conveyor_tasks (queue, scheduled_at) WHERE state = 'PENDING';
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
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    queues       TEXT NOT NULL,                       -- JSON array
    concurrency  INTEGER NOT NULL,
    busy         INTEGER NOT NULL,
    started_at   REAL NOT NULL,
    last_seen    REAL NOT NULL
);
