-- Enqueue, the metrics: add the tasks this batch created in one queue to its `enqueued` count of
-- this minute and to its total (minute 0), in the enqueue's own transaction.
INSERT INTO conveyor_metrics (queue, minute, name, shard, value)
VALUES (:queue, :minute, 'enqueued', 0, :count), (:queue, 0, 'enqueued', 0, :count)
ON CONFLICT (queue, minute, name, shard) DO UPDATE SET value = value + excluded.value
