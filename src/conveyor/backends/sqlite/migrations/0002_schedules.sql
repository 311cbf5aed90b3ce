-- Leadership leases (one row per lock name) and the last enqueued run of each cron schedule.
CREATE TABLE conveyor_locks (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  REAL NOT NULL
);

CREATE TABLE conveyor_schedules (
    name         TEXT PRIMARY KEY,
    last_due_at  REAL NOT NULL,     -- the due time of the newest run enqueued
    last_task_id TEXT,
    updated_at   REAL NOT NULL
);
