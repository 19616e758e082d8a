"""Shared transactions (the ingress's inbound messages): units handed over together run in one
transaction, each caller answered only once it has committed, and a failing unit fails only its
own caller. The worker used to settle jobs here too; its writes now go through the group commit
(tests/queue/test_worker.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.queue.jobs import NewJob, enqueue
from tidings.store.database import Database
from tidings.store.shared_transactions import SharedTransactions
from tidings.store.tables import jobs

LATER = datetime(2100, 1, 1, tzinfo=UTC)


@pytest.fixture
async def shared(database: Database) -> AsyncIterator[SharedTransactions]:
    transactions = SharedTransactions(database)
    transactions.start()
    yield transactions
    await transactions.stop()


async def written(db: Database) -> list[str]:
    async with db.read() as conn:
        return list((await conn.execute(select(jobs.c.kind).order_by(jobs.c.id))).scalars())


async def held(shared: SharedTransactions) -> tuple[asyncio.Task[None], asyncio.Event]:
    """Occupies the runner with a unit of its own until the returned event is set, so that the
    units handed over meanwhile all queue behind it and then run in one transaction."""
    entered, release = asyncio.Event(), asyncio.Event()

    async def gate(conn: AsyncConnection) -> None:
        entered.set()
        await release.wait()

    task = asyncio.create_task(shared.run(gate))
    await asyncio.wait_for(entered.wait(), timeout=5)
    return task, release


async def test_units_handed_over_together_share_a_transaction(
    database: Database, shared: SharedTransactions
) -> None:
    gate, release = await held(shared)
    before = shared.transactions

    def unit(n: int) -> Callable[[AsyncConnection], Awaitable[int]]:
        async def work(conn: AsyncConnection) -> int:
            await enqueue(conn, [NewJob(f"unit-{n}", {}, run_at=LATER)], now=datetime.now(UTC))
            return n * 10

        return work

    units = [asyncio.create_task(shared.run(unit(n))) for n in range(5)]
    await asyncio.sleep(0)  # one turn of the loop: every unit has been handed over
    release.set()
    await gate
    assert await asyncio.wait_for(asyncio.gather(*units), timeout=10) == [0, 10, 20, 30, 40]
    # Committed before the callers were answered, all in the one transaction after the gate's.
    assert await written(database) == [f"unit-{n}" for n in range(5)]
    assert shared.transactions - before == 2


async def test_a_failing_unit_fails_only_its_own_caller(
    database: Database, shared: SharedTransactions
) -> None:
    runs: list[str] = []

    def unit(name: str, *, fails: bool = False) -> Callable[[AsyncConnection], Awaitable[str]]:
        async def work(conn: AsyncConnection) -> str:
            runs.append(name)
            await enqueue(conn, [NewJob(name, {}, run_at=LATER)], now=datetime.now(UTC))
            if fails:
                raise RuntimeError(f"{name} failed")
            return name

        return work

    gate, release = await held(shared)
    units = [
        asyncio.create_task(shared.run(unit("first"))),
        asyncio.create_task(shared.run(unit("bad", fails=True))),
        asyncio.create_task(shared.run(unit("last"))),
    ]
    await asyncio.sleep(0)
    release.set()
    await gate
    results = await asyncio.wait_for(asyncio.gather(*units, return_exceptions=True), timeout=10)
    assert results[0] == "first" and results[2] == "last"
    assert isinstance(results[1], RuntimeError) and str(results[1]) == "bad failed"
    # The shared transaction was rolled back, then each unit ran again in one of its own.
    assert runs == ["first", "bad", "first", "bad", "last"]
    assert await written(database) == ["first", "last"]


async def test_a_caller_that_gives_up_waiting_still_gets_its_unit_committed(
    shared: SharedTransactions, database: Database
) -> None:
    gate, release = await held(shared)

    async def work(conn: AsyncConnection) -> str:
        await enqueue(conn, [NewJob("given-up-on", {}, run_at=LATER)], now=datetime.now(UTC))
        return "done"

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(shared.run(work), timeout=0.05)  # queued behind the gate
    release.set()
    await gate

    async def nothing(conn: AsyncConnection) -> None:
        return None

    # Units run in the order handed over: once this one has committed, so has the one given up on.
    await shared.run(nothing)
    assert await written(database) == ["given-up-on"]


async def test_stop_runs_everything_handed_over(database: Database) -> None:
    transactions = SharedTransactions(database)
    transactions.start()

    async def work(conn: AsyncConnection) -> None:
        await enqueue(conn, [NewJob("handed-over", {}, run_at=LATER)], now=datetime.now(UTC))

    unit = asyncio.create_task(transactions.run(work))
    await asyncio.sleep(0)
    await asyncio.wait_for(transactions.stop(), timeout=10)
    assert unit.done() and unit.exception() is None
    assert await written(database) == ["handed-over"]
    with pytest.raises(RuntimeError, match="not running"):
        await transactions.run(work)
