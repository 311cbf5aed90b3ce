-- Prune, the metrics: per-minute rows older than the retention (the totals, minute 0, stay).
DELETE FROM conveyor_metrics WHERE minute > 0 AND minute < :before_minute
