-- Metrics: the totals (minute 0) and the minutes of a window, shards summed.
SELECT queue, minute, name, sum(value)
FROM conveyor_metrics
WHERE minute = 0 OR minute BETWEEN :since_minute AND :until_minute
GROUP BY queue, minute, name
