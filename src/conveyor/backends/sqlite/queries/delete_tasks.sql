-- DeleteTasks: delete one task by id in any state but RUNNING (its worker holds a lease on it;
-- it can be deleted once it has finished). Its idempotency key goes with the row.
DELETE FROM conveyor_tasks WHERE id = :id AND state <> 'RUNNING'
