"""The worker's pipe to its lease keeper never blocks: both ends may send more than the socket
holds at the same moment (the deadlock a 200,000-task drain hit with blocking writes), and a
message arrives whole however it was cut."""

from __future__ import annotations

import socket

import pytest

from conveyor.worker.pipe import Pipe

BIG = 4 * 1024 * 1024  # far more than a socket pair's buffers


def _pair() -> tuple[Pipe, Pipe]:
    a, b = socket.socketpair()
    return Pipe(a), Pipe(b)


def _exchange(ends: list[Pipe], expected: list[int]) -> list[list[bytes]]:
    """Flush and receive on every end in turn, as two event loops would, until each end has
    received its ``expected`` number of messages."""
    got: list[list[bytes]] = [[] for _ in ends]
    for _ in range(100_000):
        for i, end in enumerate(ends):
            end.flush()
            got[i] += end.receive()
        if all(len(g) >= n for g, n in zip(got, expected, strict=True)):
            return got
    raise AssertionError(f"messages never arrived: {[len(g) for g in got]}")


def test_both_ends_sending_more_than_the_socket_holds_do_not_wait_on_each_other() -> None:
    worker, keeper = _pair()
    adds = [bytes([i]) * BIG for i in range(1, 3)]
    lost = bytes([9]) * BIG
    for message in adds:
        worker.send(message)  # returns at once, the rest queued
    keeper.send(lost)
    assert worker.pending and keeper.pending
    at_keeper, at_worker = _exchange([keeper, worker], expected=[2, 1])
    assert at_keeper == adds
    assert at_worker == [lost]
    assert not worker.pending and not keeper.pending
    worker.close()
    keeper.close()


def test_a_new_lease_set_replaces_the_messages_not_yet_begun() -> None:
    worker, keeper = _pair()
    worker.send(b"x" * BIG)  # begun: its first bytes are in the socket
    worker.put(b"add-1")
    worker.put(b"set-1", supersedes=True)
    worker.put(b"add-2")
    worker.put(b"set-2", supersedes=True)
    worker.put(b"add-3")
    received = _exchange([keeper, worker], expected=[3, 0])[0]
    assert received == [b"x" * BIG, b"set-2", b"add-3"]
    worker.close()
    keeper.close()


def test_small_messages_arrive_in_order_and_a_closed_end_is_seen() -> None:
    worker, keeper = _pair()
    for i in range(100):
        worker.send(b"beat %d" % i)
    assert keeper.receive() == [b"beat %d" % i for i in range(100)]
    assert keeper.receive() == []
    worker.close()
    with pytest.raises(EOFError):
        keeper.receive()
    with pytest.raises(BrokenPipeError):
        keeper.send(b"lost")
    keeper.close()
