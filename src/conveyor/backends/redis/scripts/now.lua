-- Now (a read): the backend's clock, so workers never trust their own for due times.
--
-- ARGV[1]  now override, epoch seconds ('' = Redis TIME; tests only)
-- Returns: epoch seconds as a string
return num(clock_now(ARGV[1]))
