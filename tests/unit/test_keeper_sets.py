"""The lease keeper hears the whole lease set every KEEPER_SET_AFTER claimed leases, not only
at each heartbeat: what it was told of, it extends until the next set, finished or not."""

from __future__ import annotations

from conveyor.backends.base import ClaimedTask, Lease
from conveyor.worker.heartbeat import KEEPER_SET_AFTER, Heartbeat


class KeeperRecord:
    """What the worker tells its keeper, in order (the interface Heartbeat uses)."""

    running = True

    def __init__(self) -> None:
        self.told: list[tuple[str, int]] = []

    def add(self, claimed: list[ClaimedTask]) -> None:
        self.told.append(("add", len(claimed)))

    def update(self, leases: list[Lease]) -> None:
        self.told.append(("set", len(leases)))


def _claimed(n: int, start: int) -> list[ClaimedTask]:
    return [ClaimedTask(f"t{i}", "bench", "default", b"", 5, 1, 3, 0, f"k{i}", 30.0, 0.0, 0.0,
                        None, None, 60.0) for i in range(start, start + n)]


def test_a_draining_worker_sends_its_keeper_a_whole_set_every_so_many_claims() -> None:
    held: list[ClaimedTask] = []  # what the worker still holds: the last claim only

    def leases() -> list[Lease]:
        return [Lease(c.id, c.lease_token, c.queue) for c in held]

    keeper = KeeperRecord()
    heartbeat = Heartbeat(backend=None, worker_id="w", queues=("default",), concurrency=32,  # type: ignore[arg-type]
                          lease_seconds=30.0, started_at=0.0, leases=leases, busy=lambda: 0,
                          on_lost=lambda lost: None, interval_seconds=10.0,
                          keeper=keeper)  # type: ignore[arg-type]
    claims = 3 * KEEPER_SET_AFTER // 32
    for n in range(claims):
        held = _claimed(32, n * 32)
        heartbeat.leases_claimed(held)
    sets = [i for i, (kind, _) in enumerate(keeper.told) if kind == "set"]
    assert len(sets) == 3
    assert all(keeper.told[i] == ("set", 32) for i in sets)  # the current set, not a backlog
    assert len(keeper.told) == claims
