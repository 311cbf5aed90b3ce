"""A task row whose columns SQLite accepted with the wrong types (a hand-written UPDATE, another
version, a damaged file) goes to the dead letters with the decode error when a claim reaches
it: it must never fail every claim of its queue, and it can be read afterwards."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from backends.support import claim, enqueue, new_task, row
from conveyor.backends.sqlite.backend import SQLiteBackend


def test_damaged_rows_are_buried_and_the_claim_takes_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    backend = SQLiteBackend(f"sqlite:///{path}")
    try:
        ids = enqueue(backend, *(new_task() for _ in range(5)))
        with sqlite3.connect(path) as db:
            db.execute("UPDATE conveyor_tasks SET created_at = 'garbage' WHERE id = ?", (ids[1],))
            db.execute("UPDATE conveyor_tasks SET priority = 'x' WHERE id = ?", (ids[2],))
            db.execute("UPDATE conveyor_tasks SET payload = 'text' WHERE id = ?", (ids[3],))

        claimed = claim(backend, limit=10)

        assert sorted(t.id for t in claimed) == sorted([ids[0], ids[4]])
        for task_id in ids[1:4]:
            dead = row(backend, task_id)
            assert (dead.state, dead.dead_reason) == ("DEAD", "decode_error")
            assert "could not be read" in (dead.error or "")
            assert isinstance(dead.created_at, float) and isinstance(dead.priority, int)
        assert row(backend, ids[3]).payload == "text", "the payload is kept as it was"
        assert claim(backend, limit=10) == [], "nothing left to claim, nothing failing"
    finally:
        backend.close()
