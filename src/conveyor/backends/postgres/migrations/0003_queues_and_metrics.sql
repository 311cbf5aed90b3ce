-- Per-queue settings, and the metrics kept in the backend.
--
-- conveyor_queues: one row per queue an operator touched. A paused queue keeps its tasks, but no
-- claim takes from it until it is resumed.
CREATE TABLE conveyor_queues (
    queue       text PRIMARY KEY,
    paused      boolean NOT NULL DEFAULT false,
    updated_at  double precision NOT NULL
);

-- conveyor_metrics: counters and latency-histogram bucket counts per queue and minute of the
-- backend's clock (minute = floor(epoch / 60)); minute 0 holds the totals since the beginning,
-- which are never pruned (Prometheus counters must never go down). Names: enqueued, succeeded,
-- failed, retried, dead, cancelled, expired; wait_sum, latency_sum (seconds); wait_b<i>,
-- latency_b<i> (bucket i of conveyor.metrics.histogram.BOUNDS). `shard` spreads concurrent
-- writers of one counter over several rows (each session writes the shard of its backend pid),
-- so producers enqueueing to one queue at once do not queue up behind one row lock; readers
-- sum the shards.
CREATE TABLE conveyor_metrics (
    queue   text NOT NULL,
    minute  bigint NOT NULL,
    name    text NOT NULL,
    shard   integer NOT NULL,
    value   double precision NOT NULL,
    PRIMARY KEY (queue, minute, name, shard)
);
