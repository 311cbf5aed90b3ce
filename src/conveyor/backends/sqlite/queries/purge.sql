-- Purge: delete every task of a queue (or of all queues) in one state.
DELETE FROM conveyor_tasks WHERE state = :state AND (:queue IS NULL OR queue = :queue)
