"""The PostgreSQL backend: ``postgresql://`` URLs over psycopg 3 (the ``postgres`` extra)."""
