"""The Redis backend: ``redis://host:port/db`` and ``rediss://`` (TLS). Needs the ``redis``
extra (redis-py with hiredis). The key schema is in :mod:`conveyor.backends.redis.keys`."""
