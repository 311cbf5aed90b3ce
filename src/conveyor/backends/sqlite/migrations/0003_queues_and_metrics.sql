-- Per-queue settings, and the metrics kept in the backend.
--
-- conveyor_queues: one row per queue an operator touched. A paused queue keeps its tasks, but no
-- claim takes from it until it is resumed.
CREATE TABLE conveyor_queues (
    queue       TEXT PRIMARY KEY,
    paused      INTEGER NOT NULL DEFAULT 0,
    updated_at  REAL NOT NULL
);

-- conveyor_metrics: counters and latency-histogram bucket counts per queue and minute of the
-- backend's clock (minute = floor(epoch / 60)); minute 0 holds the totals since the beginning,
-- which are never pruned (Prometheus counters must never go down). Names: enqueued, succeeded,
-- failed, retried, dead, cancelled, expired; wait_sum, latency_sum (seconds); wait_b<i>,
-- latency_b<i> (bucket i of conveyor.metrics.histogram.BOUNDS). `shard` spreads concurrent
-- writers of one counter over several rows (readers sum them); SQLite has one writer: shard 0.
CREATE TABLE conveyor_metrics (
    queue   TEXT NOT NULL,
    minute  INTEGER NOT NULL,
    name    TEXT NOT NULL,
    shard   INTEGER NOT NULL,
    value   REAL NOT NULL,
    PRIMARY KEY (queue, minute, name, shard)
);
