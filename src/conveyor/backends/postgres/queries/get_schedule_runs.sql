SELECT name, last_due_at, last_task_id FROM conveyor_schedules WHERE name = ANY(%(names)s)
