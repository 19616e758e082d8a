"""Accepts first: background writes hold back while accepts are pending, but only a moment each."""

from __future__ import annotations

import asyncio

from tidings.store.write_priority import WritePriority


async def _background_entry(priority: WritePriority, entered: list[float]) -> None:
    async with priority.background():
        entered.append(asyncio.get_running_loop().time())


async def test_a_background_write_waits_for_pending_accepts_to_be_committed() -> None:
    priority = WritePriority(one_writer=False, max_wait=5.0)
    entered: list[float] = []
    with priority.demand():
        waiting = asyncio.create_task(_background_entry(priority, entered))
        await asyncio.sleep(0.05)
        assert entered == []
    await asyncio.wait_for(waiting, timeout=1)  # let go as soon as the last accept is committed
    assert len(entered) == 1


async def test_a_background_write_waits_no_longer_than_max_wait() -> None:
    priority = WritePriority(one_writer=False, max_wait=0.05)
    entered: list[float] = []
    with priority.demand():
        start = asyncio.get_running_loop().time()
        await asyncio.wait_for(_background_entry(priority, entered), timeout=1)
        assert 0.04 <= entered[0] - start < 0.5


async def test_under_a_flood_of_accepts_background_writers_pass_one_per_max_wait() -> None:
    priority = WritePriority(one_writer=False, max_wait=0.05)
    entered: list[float] = []
    with priority.demand():
        start = asyncio.get_running_loop().time()
        await asyncio.gather(*(_background_entry(priority, entered) for _ in range(3)))
    offsets = sorted(t - start for t in entered)
    assert offsets[0] >= 0.04 and offsets[1] >= 0.09 and offsets[2] >= 0.14


async def test_without_pending_accepts_background_writes_do_not_wait() -> None:
    priority = WritePriority(one_writer=False, max_wait=5.0)
    entered: list[float] = []
    await asyncio.wait_for(
        asyncio.gather(*(_background_entry(priority, entered) for _ in range(5))), timeout=1
    )
    assert len(entered) == 5


async def test_with_one_writer_an_urgent_and_a_background_write_never_overlap() -> None:
    priority = WritePriority(one_writer=True, max_wait=0.01)
    inside: list[str] = []
    overlaps: list[list[str]] = []

    async def hold(kind: str) -> None:
        context = priority.urgent() if kind == "urgent" else priority.background()
        async with context:
            inside.append(kind)
            if len(inside) > 1:
                overlaps.append(list(inside))
            await asyncio.sleep(0.01)
            inside.remove(kind)

    await asyncio.gather(*(hold("urgent" if i % 2 else "background") for i in range(10)))
    assert overlaps == []
