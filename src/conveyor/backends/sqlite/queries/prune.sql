-- Prune: finished tasks whose retention ran out (DONE and CANCELLED; DEAD waits for an operator).
DELETE FROM conveyor_tasks
WHERE seq IN (SELECT seq FROM conveyor_tasks WHERE expires_at < :now LIMIT :limit)
  AND state IN ('DONE', 'CANCELLED')
