-- Record metrics at the backend's clock, inside the transition that caused them (Enqueue:
-- `enqueued`, Cancel: `cancelled`): add one queue's count to this minute and to its total (minute 0).
INSERT INTO conveyor_metrics (queue, minute, name, shard, value)
VALUES (:queue, :minute, :name, 0, :count), (:queue, 0, :name, 0, :count)
ON CONFLICT (queue, minute, name, shard) DO UPDATE SET value = value + excluded.value
