-- Prune, the metrics: per-minute rows older than the retention (the totals, minute 0, stay).
WITH clock AS (
    SELECT coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8) AS now
)
DELETE FROM conveyor_metrics
USING clock
WHERE minute > 0 AND minute < floor((clock.now - %(retention)s::float8) / 60)
