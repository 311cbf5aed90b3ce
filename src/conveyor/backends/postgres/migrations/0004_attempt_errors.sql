-- The errors of a task's last attempts (a JSON array, oldest first, at most
-- ATTEMPT_ERRORS_KEPT entries of {attempt, worker, ended_at, error}), appended by Fail.
-- `error` keeps only the last one, whole; this keeps each attempt's, truncated.
ALTER TABLE conveyor_tasks ADD COLUMN attempt_errors jsonb;
