"""Group commit: concurrent writes share transactions, nobody returns before their rows are durable,
and one bad write fails only its own caller."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Table, select, text, update
from sqlalchemy.dialects.postgresql import asyncpg as postgres_asyncpg
from sqlalchemy.exc import IntegrityError

from tidings.domain.content import Text
from tidings.domain.errors import LowBalance
from tidings.domain.message import Channel, Message, MessageType
from tidings.queue.jobs import NewJob, job_rows
from tidings.store.accounts import insert_account
from tidings.store.batch_runners import PostgresBatchRunner, SqliteBatchRunner
from tidings.store.batch_sql import BatchSql, BatchWrite, Debit, queues_jobs
from tidings.store.database import Database
from tidings.store.group_commit import GroupCommitWriter
from tidings.store.messages import message_row
from tidings.store.statements import Execute
from tidings.store.tables import accounts, jobs, messages
from tidings.store.writes import Writes

Write = Sequence[tuple[Table, dict[str, Any]]]


@pytest.fixture
async def writers(database: Database) -> AsyncIterator[Callable[..., GroupCommitWriter]]:
    made: list[GroupCommitWriter] = []

    def make(
        *, max_batch: int = 256, window_seconds: float = 0.005, background_window_seconds: float = 0.0
    ) -> GroupCommitWriter:
        writer = GroupCommitWriter(
            database,
            max_batch=max_batch,
            window_seconds=window_seconds,
            background_window_seconds=background_window_seconds,
        )
        writer.start()
        made.append(writer)
        return writer

    yield make
    for writer in made:
        await writer.stop()


def message_write(message_uuid: str | None = None) -> Write:
    """What the submit path writes: a message and its delivery job."""
    message = Message(
        uuid=message_uuid or str(uuid.uuid4()),
        account_id="acct0001",
        channel=Channel.SMS,
        message_type=MessageType.TEXT,
        to="447700900000",
        sender="Acme",
        content=Text("hello"),
        created_at=datetime.now(UTC),
    )
    (job,) = job_rows([NewJob("deliver_message", {"message_uuid": message.uuid})], message.created_at)
    return [(messages, message_row(message)), (jobs, job)]


def uuid_of(write: Write) -> str:
    return str(write[0][1]["uuid"])


async def stored_uuids(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set((await conn.execute(select(messages.c.uuid))).scalars())


async def delivery_jobs_for(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        payloads = (await conn.execute(select(jobs.c.payload))).scalars()
        return {payload["message_uuid"] for payload in payloads}


async def test_concurrent_writes_share_transactions_and_are_visible_on_return(
    observer: Database, writers: Callable[..., GroupCommitWriter]
) -> None:
    writer = writers(window_seconds=0.005)
    count = 40
    all_writes = [message_write() for _ in range(count)]

    async def submit(write: Write) -> bool:
        await writer.write(write)
        # Answered: the row must already be there for anyone else to read.
        async with observer.engine.connect() as conn:
            found = await conn.execute(select(messages.c.uuid).where(messages.c.uuid == uuid_of(write)))
            return found.first() is not None

    visible = await asyncio.gather(*(submit(w) for w in all_writes))
    assert all(visible)
    commits = writer.batches_committed
    assert 1 <= commits <= count // 4, f"{count} writes took {commits} commits"
    assert await stored_uuids(observer) == {uuid_of(w) for w in all_writes}
    assert await delivery_jobs_for(observer) == {uuid_of(w) for w in all_writes}


async def test_a_batch_never_exceeds_max_batch(
    observer: Database, writers: Callable[..., GroupCommitWriter]
) -> None:
    writer = writers(max_batch=3, window_seconds=0.005)
    all_writes = [message_write() for _ in range(10)]
    await asyncio.gather(*(writer.write(w) for w in all_writes))
    assert writer.batches_committed == 4  # 3 + 3 + 3 + 1
    assert len(await stored_uuids(observer)) == 10


async def test_writes_arriving_within_the_window_share_a_commit(
    observer: Database, writers: Callable[..., GroupCommitWriter]
) -> None:
    writer = writers(window_seconds=0.1)
    first = asyncio.create_task(writer.write(message_write()))
    await asyncio.sleep(0.01)  # well inside the window
    second = asyncio.create_task(writer.write(message_write()))
    await asyncio.gather(first, second)
    assert writer.batches_committed == 1
    assert len(await stored_uuids(observer)) == 2


def touch_account(account_id: str) -> Execute:
    """A background write of the worker's kind: one statement, no rows of its own."""
    return Execute("UPDATE accounts SET name = name WHERE api_key = 'x" + account_id + "'", ())


async def test_background_writes_wait_for_company_within_their_window(
    writers: Callable[..., GroupCommitWriter],
) -> None:
    writer = writers(background_window_seconds=0.2)
    first = asyncio.create_task(writer.write_background([touch_account("1")]))
    await asyncio.sleep(0.02)  # well inside the window
    second = asyncio.create_task(writer.write_background([touch_account("2")]))
    await asyncio.gather(first, second)
    assert writer.batches_committed == 1


async def test_an_accept_ends_the_background_window_at_once(
    observer: Database, writers: Callable[..., GroupCommitWriter]
) -> None:
    # A window far longer than the test may take: only the accept's arrival can end it.
    writer = writers(background_window_seconds=60, window_seconds=0)
    background = asyncio.create_task(writer.write_background([touch_account("1")]))
    await asyncio.sleep(0.02)
    await asyncio.wait_for(writer.write(message_write()), timeout=10)
    await asyncio.wait_for(background, timeout=10)
    assert writer.batches_committed == 1  # the accept took the waiting write along
    assert len(await stored_uuids(observer)) == 1


async def test_a_write_a_client_waits_on_ends_the_background_window_at_once(
    writers: Callable[..., GroupCommitWriter],
) -> None:
    # A window far longer than the test may take: only the write a client waits on can end it.
    writer = writers(background_window_seconds=60)
    gathered = asyncio.create_task(writer.write_background([touch_account("1")]))
    await asyncio.sleep(0.02)
    await asyncio.wait_for(writer.write_background([touch_account("2")], soon=True), timeout=10)
    await asyncio.wait_for(gathered, timeout=10)
    assert writer.batches_committed == 1  # it took the waiting write along
    # Once it has gone, the window holds again for writes nobody waits on.
    later = asyncio.create_task(writer.write_background([touch_account("3")]))
    await asyncio.sleep(0.02)
    await asyncio.wait_for(writer.write_background([touch_account("4")], soon=True), timeout=10)
    await asyncio.wait_for(later, timeout=10)
    assert writer.batches_committed == 2


async def test_one_bad_write_fails_only_its_caller(
    observer: Database, writers: Callable[..., GroupCommitWriter]
) -> None:
    writer = writers(window_seconds=0.01)
    existing = message_write()
    await writer.write(existing)

    good = [message_write() for _ in range(8)]
    # A new row and a row whose primary key is taken: the write fails as a whole.
    bad: Write = [message_write()[0], message_write(uuid_of(existing))[0]]
    outcomes = await asyncio.gather(
        *(writer.write(w) for w in [*good[:4], bad, *good[4:]]), return_exceptions=True
    )

    errors = [o for o in outcomes if o is not None]
    assert len(errors) == 1 and isinstance(errors[0], IntegrityError)
    assert outcomes[4] is errors[0]
    stored = await stored_uuids(observer)
    assert stored == {uuid_of(existing), *(uuid_of(w) for w in good)}
    assert bad[0][1]["uuid"] not in stored  # nothing of the failed write was kept


async def test_two_writes_of_one_key_in_a_batch_keep_the_first(
    observer: Database, writers: Callable[..., GroupCommitWriter]
) -> None:
    writer = writers(window_seconds=0.01)
    shared = str(uuid.uuid4())
    first, second, other = message_write(shared), message_write(shared), message_write()
    outcomes = await asyncio.gather(
        writer.write(first), writer.write(second), writer.write(other), return_exceptions=True
    )
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], IntegrityError)
    assert await stored_uuids(observer) == {shared, uuid_of(other)}
    async with observer.engine.connect() as conn:
        job_count = len((await conn.execute(select(jobs.c.id))).all())
    assert job_count == 2  # the failed write's job row was rolled back with it


async def test_stop_flushes_writes_handed_over_before_it(database: Database, observer: Database) -> None:
    writer = GroupCommitWriter(database, max_batch=256, window_seconds=0.3)
    writer.start()
    pending = [message_write() for _ in range(5)]
    tasks = [asyncio.create_task(writer.write(w)) for w in pending]
    await asyncio.sleep(0)  # each has handed its rows over; the writer is waiting out its window
    assert not any(t.done() for t in tasks)

    await writer.stop()
    assert all(t.done() and t.exception() is None for t in tasks)
    assert await stored_uuids(observer) == {uuid_of(w) for w in pending}
    with pytest.raises(RuntimeError):
        await writer.write(message_write())


async def test_write_before_start_is_refused(database: Database) -> None:
    writer = GroupCommitWriter(database, max_batch=1, window_seconds=0)
    with pytest.raises(RuntimeError):
        await writer.write(message_write())
    await writer.stop()  # a writer that never started stops quietly


async def test_a_caller_that_gives_up_waiting_still_gets_its_rows_written(
    observer: Database, writers: Callable[..., GroupCommitWriter]
) -> None:
    writer = writers(window_seconds=0.2)
    write = message_write()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(writer.write(write), timeout=0.01)
    await writer.stop()
    assert uuid_of(write) in await stored_uuids(observer)


# --- debits written with the rows ------------------------------------------------------------


async def make_account(db: Database, api_key: str, *, balance: str = "0", credit_limit: str | None) -> None:
    async with db.begin() as conn:
        await insert_account(
            conn,
            api_key=api_key,
            name=api_key,
            secret_hash="x",
            signature_secret_enc="x",
            now=datetime.now(UTC),
        )
        await conn.execute(
            update(accounts)
            .where(accounts.c.api_key == api_key)
            .values(
                balance=Decimal(balance), credit_limit=None if credit_limit is None else Decimal(credit_limit)
            )
        )


async def balance_of(db: Database, api_key: str) -> Decimal:
    async with db.engine.connect() as conn:
        value = (
            await conn.execute(select(accounts.c.balance).where(accounts.c.api_key == api_key))
        ).scalar_one()
    return Decimal(str(value))


async def test_concurrent_debits_cannot_spend_past_the_credit_limit(
    observer: Database, writers: Callable[..., GroupCommitWriter]
) -> None:
    writer = writers(window_seconds=0.01)
    await make_account(observer, "acctlim1", credit_limit="0.021")
    price = Decimal("0.007")
    all_writes = [message_write() for _ in range(5)]
    debit = Debit(account_id="acctlim1", amount=price, credit_limit=Decimal("0.021"))
    outcomes = await asyncio.gather(*(writer.write(w, debit) for w in all_writes), return_exceptions=True)

    accepted = [w for w, o in zip(all_writes, outcomes, strict=True) if o is None]
    refused = [o for o in outcomes if o is not None]
    assert len(accepted) == 3 and len(refused) == 2
    assert all(isinstance(o, LowBalance) for o in refused)
    assert await stored_uuids(observer) == {uuid_of(w) for w in accepted}  # refused rows not written
    assert await balance_of(observer, "acctlim1") == Decimal("-0.021")


async def test_an_account_short_of_credit_does_not_hold_back_the_others_in_its_batch(
    observer: Database, writers: Callable[..., GroupCommitWriter]
) -> None:
    writer = writers(window_seconds=0.05)
    await make_account(observer, "acctpoor", credit_limit="0.2")
    await make_account(observer, "acctrich", credit_limit=None)
    poor = Debit(account_id="acctpoor", amount=Decimal("0.1"), credit_limit=Decimal("0.2"))
    rich = Debit(account_id="acctrich", amount=Decimal("0.1"), credit_limit=None)
    arrivals = [(message_write(), poor if i % 2 == 0 else rich) for i in range(8)]  # one batch
    outcomes = await asyncio.gather(*(writer.write(w, d) for w, d in arrivals), return_exceptions=True)

    poor_outcomes = [o for (_, d), o in zip(arrivals, outcomes, strict=True) if d is poor]
    assert poor_outcomes[:2] == [None, None]  # in order of arrival, as many as the credit allows
    assert all(isinstance(o, LowBalance) for o in poor_outcomes[2:])
    assert all(o is None for (_, d), o in zip(arrivals, outcomes, strict=True) if d is rich)
    accepted = {uuid_of(w) for (w, _), o in zip(arrivals, outcomes, strict=True) if o is None}
    assert await stored_uuids(observer) == accepted and len(accepted) == 6
    # The others in one commit, then the short account's writes one at a time (two fit).
    assert writer.batches_committed == 3
    assert await balance_of(observer, "acctpoor") == Decimal("-0.2")
    assert await balance_of(observer, "acctrich") == Decimal("-0.4")


async def test_stopping_the_writer_stops_its_connection(
    database: Database, writers: Callable[..., GroupCommitWriter], backend: str
) -> None:
    writer = writers(window_seconds=0)
    await writer.write(message_write())
    runner = writer._runners[0]
    process = runner._process if isinstance(runner, SqliteBatchRunner) else None
    await writer.stop()
    assert not runner.connected
    if backend == "sqlite":
        assert process is not None and process.returncode == 0  # the writer process exited cleanly


@pytest.mark.parametrize(
    ("price", "limit", "fits"),
    [("0.1", "0.3", 3), ("0.0333", "0.0999", 3), ("0.0070", "0.0700", 10)],
)
async def test_the_last_credit_that_exactly_fits_is_spent(
    observer: Database, writers: Callable[..., GroupCommitWriter], price: str, limit: str, fits: int
) -> None:
    writer = writers(window_seconds=0)
    await make_account(observer, "acctlim2", credit_limit=limit)
    debit = Debit(account_id="acctlim2", amount=Decimal(price), credit_limit=Decimal(limit))
    for _ in range(fits):
        await writer.write(message_write(), debit)  # one at a time: each its own transaction
    with pytest.raises(LowBalance):
        await writer.write(message_write(), debit)
    assert await balance_of(observer, "acctlim2") == -Decimal(limit)


async def test_unlimited_debits_of_a_batch_are_summed_per_account(
    observer: Database, writers: Callable[..., GroupCommitWriter]
) -> None:
    writer = writers(window_seconds=0.01)
    await make_account(observer, "acctfree", balance="1", credit_limit=None)
    debit = Debit(account_id="acctfree", amount=Decimal("0.25"), credit_limit=None)
    await asyncio.gather(*(writer.write(message_write(), debit) for _ in range(6)))
    assert await balance_of(observer, "acctfree") == Decimal("-0.5")
    assert len(await stored_uuids(observer)) == 6


async def test_a_failed_write_gives_its_debit_back(
    observer: Database, writers: Callable[..., GroupCommitWriter]
) -> None:
    writer = writers(window_seconds=0.01)
    await make_account(observer, "acctroll", balance="1", credit_limit="0")
    existing = message_write()
    await writer.write(existing)
    debit = Debit(account_id="acctroll", amount=Decimal("0.4"), credit_limit=Decimal("0"))
    outcomes = await asyncio.gather(
        writer.write(message_write(uuid_of(existing)), debit),  # duplicate key: fails
        writer.write(message_write(), debit),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], IntegrityError) and outcomes[1] is None
    assert await balance_of(observer, "acctroll") == Decimal("0.6")


async def test_a_lost_database_connection_does_not_fail_the_next_write(
    observer: Database, writers: Callable[..., GroupCommitWriter], backend: str
) -> None:
    writer = writers(window_seconds=0)
    await writer.write(message_write())  # the writer now holds a connection of its own
    if backend == "postgresql":
        # The server drops it (a restart, an idle timeout, a proxy): the writer must reconnect.
        async with observer.begin() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    else:
        # On SQLite the connection is the writer process's: it dies (killed, out of memory).
        runner = writer._runners[0]
        assert isinstance(runner, SqliteBatchRunner) and runner._process is not None
        runner._process.kill()
        await runner._process.wait()
    single = message_write()
    await writer.write(single)
    assert uuid_of(single) in await stored_uuids(observer)


# PostgreSQL debits in the batch's opening statement (below); SQLite in statements of their own.
@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_batch_debits_its_accounts_in_one_order_whatever_the_arrival_order(database: Database) -> None:
    # Two batches committing at once lock account rows in the same order, so neither deadlocks.
    arrivals = ["acctc", "accta", "acctb", "accta", "acctc"]
    limits = [None, Decimal("1"), Decimal("1"), Decimal("1"), None]
    writes = [
        BatchWrite(message_write(), Debit(account_id=account, amount=Decimal("0.1"), credit_limit=limit))
        for account, limit in zip(arrivals, limits, strict=True)
    ]
    statements = BatchSql(database.engine.dialect).statements(writes)
    debits = [s for s in statements if isinstance(s, Execute)]
    debited = [next(p for p in s.params if isinstance(p, str) and p.startswith("acct")) for s in debits]
    assert debited == ["accta", "acctb", "acctc"]
    assert statements[-len(debits) :] == debits  # after every row
    assert [s.guarded_account for s in debits] == ["accta", "acctb", None]  # acctc has no limit


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_batches_debiting_the_same_accounts_in_opposite_orders_never_deadlock(
    database: Database, observer: Database
) -> None:
    # The middle account is held locked while two batches start, one arriving with its accounts
    # in one order, one in the other. Were locks taken in arrival order, each would then hold an
    # end account the other waits for once the middle one is free: a deadlock, which PostgreSQL
    # breaks by failing one of them.
    names = ["acctdl1", "acctdl2", "acctdl3"]
    for name in names:
        await make_account(observer, name, balance="100", credit_limit="1")
    runners = [PostgresBatchRunner(database.engine) for _ in range(2)]

    def batch(order: list[str]) -> list[BatchWrite]:
        return [
            BatchWrite(
                message_write(), Debit(account_id=name, amount=Decimal("0.5"), credit_limit=Decimal("1"))
            )
            for name in order
        ]

    try:
        async with observer.engine.connect() as blocker:
            await blocker.execute(
                select(accounts.c.api_key).where(accounts.c.api_key == "acctdl2").with_for_update()
            )
            batches = [
                asyncio.create_task(runners[0].run(batch(names))),
                asyncio.create_task(runners[1].run(batch(names[::-1]))),
            ]
            await _until_waiting_on_locks(observer, 2)
            await blocker.rollback()
        await asyncio.wait_for(asyncio.gather(*batches), timeout=10)
    finally:
        for runner in runners:
            await runner.close()
    assert [await balance_of(observer, name) for name in names] == [Decimal("99")] * 3


async def _until_waiting_on_locks(db: Database, count: int) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    async with asyncio.timeout(10):
        while True:
            # A transaction per look: a transaction reads pg_stat_activity once and keeps that.
            async with db.engine.connect() as conn:
                if await conn.scalar(query) >= count:
                    return
            await asyncio.sleep(0.01)


async def test_one_account_debited_twice_in_a_batch_is_held_to_the_stricter_limit(
    observer: Database, writers: Callable[..., GroupCommitWriter]
) -> None:
    # An account is debited once per batch, the sum under the stricter of its writes'
    # limits (the limit was changed between two sends): refused, the writes are retried one by
    # one, each under its own limit.
    writer = writers(window_seconds=0.05)
    await make_account(observer, "accttwo", balance="0", credit_limit="0.5")
    loose = Debit(account_id="accttwo", amount=Decimal("0.4"), credit_limit=Decimal("0.5"))
    strict = Debit(account_id="accttwo", amount=Decimal("0.4"), credit_limit=Decimal("0.1"))
    first, second = message_write(), message_write()
    outcomes = await asyncio.gather(
        writer.write(first, loose), writer.write(second, strict), return_exceptions=True
    )
    assert outcomes[0] is None and isinstance(outcomes[1], LowBalance), outcomes
    assert await stored_uuids(observer) == {uuid_of(first)}
    assert await balance_of(observer, "accttwo") == Decimal("-0.4")


# SQLite has one writer: there, batches commit one after another by design.
@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_batch_waiting_on_a_locked_account_does_not_hold_up_the_next(
    observer: Database, writers: Callable[..., GroupCommitWriter], backend: str
) -> None:
    writer = writers(window_seconds=0)
    await make_account(observer, "acctbusy", balance="1", credit_limit=None)
    debit = Debit(account_id="acctbusy", amount=Decimal("0.25"), credit_limit=None)
    async with observer.engine.connect() as blocker:
        await blocker.execute(
            select(accounts.c.api_key).where(accounts.c.api_key == "acctbusy").with_for_update()
        )
        stuck = asyncio.create_task(writer.write(message_write(), debit))
        await asyncio.sleep(0.2)
        assert not stuck.done()
        free = message_write()
        await asyncio.wait_for(writer.write(free), timeout=5)  # committed by the other connection
        assert uuid_of(free) in await stored_uuids(observer)
        await blocker.rollback()
    await asyncio.wait_for(stuck, timeout=5)
    assert await balance_of(observer, "acctbusy") == Decimal("0.75")


class UnreachableDatabase:
    """A batch runner whose database refuses every connection, as one that is down does."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self._connected = True  # as if it held a connection from before the outage

    @property
    def connected(self) -> bool:
        return self._connected

    async def run(self, writes: Sequence[Any]) -> list[Any]:
        self.batches.append(len(writes))
        raise ConnectionRefusedError(111, "Connection refused")

    async def discard(self) -> None:
        self._connected = False

    async def close(self) -> None:
        return None


async def test_a_batch_the_database_is_down_for_fails_whole_after_one_more_try(database: Database) -> None:
    """Split one by one, each write would fail alike, a connection attempt each: all fail at once,
    after one try on a new connection (the kept one may only have died in a restart)."""
    writer = GroupCommitWriter(database, max_batch=256, window_seconds=0)
    runner = UnreachableDatabase()
    writer._runners = [runner]
    writer.start()
    try:
        results = await asyncio.gather(
            *(writer.write(message_write()) for _ in range(5)), return_exceptions=True
        )
    finally:
        await writer.stop()
    assert all(isinstance(result, ConnectionRefusedError) for result in results), results
    assert runner.batches == [5, 5]


def test_only_a_batch_that_queues_a_job_wakes_the_workers() -> None:
    # A claim commits too; were every commit to NOTIFY, an idle worker would wake itself and claim
    # again in a loop (it did: ~190 empty transactions a second).
    dialect = postgres_asyncpg.dialect()
    writes = Writes(dialect)
    now = datetime.now(UTC)
    claim = BatchWrite((), None, writes.claim(worker_id="w", limit=8, now=now, lease=timedelta(seconds=30)))
    settle = BatchWrite((), None, [writes.lock_message("m")])
    queued = BatchWrite((), None, writes.enqueue([NewJob("send_webhook", {})], now))

    def notifies(*batch: BatchWrite) -> bool:
        return queues_jobs(batch)

    assert not notifies(claim, settle)
    assert notifies(claim, queued)
    assert notifies(BatchWrite(message_write(), None))  # an accepted message queues its delivery
    assert not notifies(BatchWrite(message_write()[:1], None))  # a row that queues nothing
