-- Prune: workers silent for longer than the given time are gone.
DELETE FROM conveyor_workers
WHERE last_seen < coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8)
                  - %(silence)s::float8
