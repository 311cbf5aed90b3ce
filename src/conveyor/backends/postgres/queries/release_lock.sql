-- Release a lease we hold, so a successor need not wait for the TTL (graceful shutdown).
DELETE FROM conveyor_locks WHERE name = %(name)s AND holder = %(holder)s
