SELECT holder FROM conveyor_locks WHERE name = :name AND expires_at > :now
