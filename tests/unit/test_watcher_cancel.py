"""A stopping worker's watchers end even when one swallows its cancellation."""

from __future__ import annotations

import asyncio

from conveyor.worker.worker import _cancel_and_wait


def test_a_watcher_that_swallowed_its_cancellation_is_cancelled_again() -> None:
    """What Python 3.11's ``asyncio.wait_for`` does when the cancellation lands in the turn its
    inner future completes: the awaiting code carries on as if nothing happened, here into a
    wait of a minute."""
    swallowed: list[bool] = []

    async def watcher() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            swallowed.append(True)  # lost, as wait_for loses it
        await asyncio.sleep(60)

    async def main() -> None:
        task = asyncio.create_task(watcher())
        await asyncio.sleep(0)  # let it start waiting
        await asyncio.wait_for(_cancel_and_wait(task), timeout=5.0)
        assert task.cancelled()

    asyncio.run(main())
    assert swallowed == [True]
