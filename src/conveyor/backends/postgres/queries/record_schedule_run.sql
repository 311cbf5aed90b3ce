-- Remember the newest run enqueued for a schedule; never move backwards (two leaders may race).
INSERT INTO conveyor_schedules AS s (name, last_due_at, last_task_id, updated_at)
VALUES (%(name)s, %(last_due_at)s::float8, %(last_task_id)s,
        coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8))
ON CONFLICT (name) DO UPDATE
SET last_due_at = excluded.last_due_at, last_task_id = excluded.last_task_id,
    updated_at = excluded.updated_at
WHERE excluded.last_due_at > s.last_due_at
