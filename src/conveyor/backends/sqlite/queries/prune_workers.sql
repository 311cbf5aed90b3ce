-- Prune: workers silent for longer than the given time are gone.
DELETE FROM conveyor_workers WHERE last_seen < :now - :silence
