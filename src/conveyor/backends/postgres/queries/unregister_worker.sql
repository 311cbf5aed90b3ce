DELETE FROM conveyor_workers WHERE id = %(id)s
