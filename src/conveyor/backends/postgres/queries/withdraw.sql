-- Withdraw: the worker got busy or stops; single new tasks notify other workers again.
DELETE FROM conveyor_offers WHERE worker_id = %(worker_id)s
