-- Prune, after the deletes: Conveyor's tables in the current schema whose dead rows have piled
-- up (more than 1,000 and a tenth of the live ones), for a VACUUM of Conveyor's own. A queue table
-- churns (every task is inserted, updated twice and deleted); where autovacuum is off, or
-- falls behind, its heap and indexes would otherwise grow for ever. Where autovacuum keeps up
-- this returns nothing. The counts are the statistics system's (a read of shared memory).
SELECT relname
FROM pg_stat_user_tables
WHERE schemaname = current_schema()
  AND starts_with(relname, 'conveyor_')
  AND n_dead_tup > 1000 + 0.1 * n_live_tup
ORDER BY n_dead_tup DESC
