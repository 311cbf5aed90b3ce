-- Complete: RUNNING -> DONE, only for the holder of the current lease token; a batch in one
-- statement. Returns the ids completed (the caller reports the others as lost).
-- The batch is one JSON document of [id, lease token, result in base64 or null] rows: psycopg
-- dumps a list parameter element by element in Python (a regex search each), which took 9%
-- of a draining worker's time holding the GIL; msgspec writes the JSON text in C. The fourth
-- element is the attempt's real start as its worker reports it (null: the lease's start
-- stays), kept between the lease's start and now.
WITH clock AS (
    SELECT coalesce(%(now)s::float8, extract(epoch FROM clock_timestamp())::float8) AS now
)
UPDATE conveyor_tasks AS t
SET state = 'DONE',
    started_at = CASE WHEN b.started_at IS NULL THEN t.started_at
                      ELSE greatest(t.started_at, least(b.started_at, clock.now)) END,
    result = b.result,
    completed_at = clock.now,
    expires_at = clock.now + t.result_ttl_seconds,
    lease_token = NULL,
    lease_expires_at = NULL
FROM (SELECT e->>0 AS id, e->>1 AS lease_token, decode(e->>2, 'base64') AS result,
             (e->>3)::float8 AS started_at
      FROM jsonb_array_elements(%(batch)s::jsonb) AS e) AS b,
     clock
WHERE t.id = b.id AND t.state = 'RUNNING' AND t.lease_token = b.lease_token
RETURNING t.id
