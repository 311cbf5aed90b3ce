-- DeleteTasks: delete tasks by id in any state but RUNNING (its worker holds a lease on it;
-- it can be deleted once it has finished). Their idempotency keys go with the rows. Returns
-- the ids deleted.
DELETE FROM conveyor_tasks
WHERE id = ANY(%(ids)s::text[]) AND state <> 'RUNNING'
RETURNING id
