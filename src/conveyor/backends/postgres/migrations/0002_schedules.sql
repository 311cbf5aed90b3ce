-- Leadership leases (one row per lock name) and the last enqueued run of each cron schedule.
CREATE TABLE conveyor_locks (
    name        text PRIMARY KEY,
    holder      text NOT NULL,
    expires_at  double precision NOT NULL
);

CREATE TABLE conveyor_schedules (
    name         text PRIMARY KEY,
    last_due_at  double precision NOT NULL,   -- the due time of the newest run enqueued
    last_task_id text,
    updated_at   double precision NOT NULL
);
