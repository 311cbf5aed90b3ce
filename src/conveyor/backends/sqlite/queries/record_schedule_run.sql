-- Remember the newest run enqueued for a schedule; never move backwards (two leaders may race).
INSERT INTO conveyor_schedules (name, last_due_at, last_task_id, updated_at)
VALUES (:name, :last_due_at, :last_task_id, :now)
ON CONFLICT (name) DO UPDATE
SET last_due_at = excluded.last_due_at, last_task_id = excluded.last_task_id,
    updated_at = excluded.updated_at
WHERE excluded.last_due_at > conveyor_schedules.last_due_at
