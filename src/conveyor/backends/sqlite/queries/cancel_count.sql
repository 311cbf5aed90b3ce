-- Cancel, the metrics: add the tasks cancelled in one queue to its `cancelled` count of this
-- minute and to its total (minute 0), in the cancel's own transaction.
INSERT INTO conveyor_metrics (queue, minute, name, shard, value)
VALUES (:queue, :minute, 'cancelled', 0, :count), (:queue, 0, 'cancelled', 0, :count)
ON CONFLICT (queue, minute, name, shard) DO UPDATE SET value = value + excluded.value
