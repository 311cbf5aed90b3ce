-- Record metrics: add one count to its (queue, minute, name) row (the caller runs it for the
-- minute and for the totals, minute 0, in one transaction).
INSERT INTO conveyor_metrics (queue, minute, name, shard, value)
VALUES (:queue, :minute, :name, 0, :value)
ON CONFLICT (queue, minute, name, shard) DO UPDATE SET value = value + excluded.value
