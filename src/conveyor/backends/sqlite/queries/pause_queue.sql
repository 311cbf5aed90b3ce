-- Pause (1) or resume (0) claims from one queue. Its tasks stay where they are.
INSERT INTO conveyor_queues (queue, paused, updated_at) VALUES (:queue, :paused, :now)
ON CONFLICT (queue) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at
