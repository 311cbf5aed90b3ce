-- Purge: delete every task of a queue (or of all queues) in one state.
DELETE FROM conveyor_tasks
WHERE state = %(state)s AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
