-- Queue stats, the paused queues (listed even when they hold no task).
SELECT queue FROM conveyor_queues WHERE paused = 1
