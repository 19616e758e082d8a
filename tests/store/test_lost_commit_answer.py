"""A batch whose COMMIT answer is lost (the connection, or SQLite's writer process, dies after the
COMMIT went out) is settled by what actually happened to it: written once, reported written only
if it was, and never written twice. One whose fate cannot be told before the database goes away
fails in doubt, and `resolve` tells it once the database is back."""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.store.commit_answer_proxy import CommitAnswerProxy
from tests.store.test_group_commit import balance_of, make_account, message_write, stored_uuids, uuid_of
from tidings.store import sqlite_writer_process
from tidings.store.batch_runners import PostgresBatchRunner, SqliteBatchRunner, batch_runner
from tidings.store.database import Database
from tidings.store.group_commit import GroupCommitWriter
from tidings.store.outage import CommitInDoubt, CommittedRowsLost, database_unavailable
from tidings.store.statements import Execute
from tidings.store.tables import commit_markers, messages


def add_to_balance(account_id: str) -> Execute:
    """A background write that would show being applied twice."""
    return Execute(f"UPDATE accounts SET balance = balance + 1 WHERE api_key = '{account_id}'", ())


def claim_like(account_id: str) -> Execute:
    """A background write with rows of its own, as a claim has."""
    return Execute(f"SELECT api_key FROM accounts WHERE api_key = '{account_id}'", (), returning=True)


async def one_lane_writer(database: Database) -> GroupCommitWriter:
    """A writer with one runner, so that each batch goes over the connection the last one kept."""
    writer = GroupCommitWriter(database, max_batch=256, window_seconds=0)
    writer._runners = [batch_runner(database)]
    writer.start()
    await writer.write(message_write())  # the runner now holds a connection
    return writer


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_batch_committed_but_unanswered_succeeds_once(
    proxied: Database, commit_proxy: CommitAnswerProxy, observer: Database, backend: str
) -> None:
    await make_account(observer, "acctlost", credit_limit=None)
    writer = await one_lane_writer(proxied)
    try:
        commit_proxy.lose_next_commit_answer()
        accepted = message_write()
        rows = await asyncio.gather(
            writer.write(accepted),
            writer.write_background([add_to_balance("acctlost")]),
            writer.write_background([claim_like("acctlost")]),
        )
    finally:
        await writer.stop()
    assert commit_proxy.fired.is_set()
    assert uuid_of(accepted) in await stored_uuids(observer)
    assert await balance_of(observer, "acctlost") == Decimal(1)  # not twice
    assert rows[2] == [[("acctlost",)]]  # the rows read before the COMMIT went out


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_batch_whose_commit_never_arrived_is_written_again(
    proxied: Database, commit_proxy: CommitAnswerProxy, observer: Database, backend: str
) -> None:
    await make_account(observer, "acctlost", credit_limit=None)
    writer = await one_lane_writer(proxied)
    try:
        commit_proxy.lose_next_commit_answer(commit_reaches_server=False)
        accepted = message_write()
        await asyncio.gather(writer.write(accepted), writer.write_background([add_to_balance("acctlost")]))
    finally:
        await writer.stop()
    assert commit_proxy.fired.is_set()
    assert uuid_of(accepted) in await stored_uuids(observer)
    assert await balance_of(observer, "acctlost") == Decimal(1)


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_batch_that_cannot_be_told_fails_in_doubt_and_is_not_written_again(
    proxied: Database, commit_proxy: CommitAnswerProxy, observer: Database, backend: str
) -> None:
    await make_account(observer, "acctlost", credit_limit=None)
    writer = await one_lane_writer(proxied)
    try:
        # The COMMIT lands, then the database is out of reach: nobody can say it did.
        commit_proxy.lose_next_commit_answer(then_refuse=True)
        outcomes = await asyncio.gather(
            writer.write(message_write()),
            writer.write_background([add_to_balance("acctlost")]),
            return_exceptions=True,
        )
    finally:
        await writer.stop()
    assert all(isinstance(outcome, CommitInDoubt) for outcome in outcomes), outcomes
    assert all(database_unavailable(outcome) for outcome in outcomes)  # the API answers 503
    assert await balance_of(observer, "acctlost") == Decimal(1)  # it did land, once


async def sqlite_writer_that_dies_before_answering(database_path: str) -> asyncio.subprocess.Process:
    """The real writer process, whose answers go to a reader that is already gone: it commits the
    batch it is sent, fails to answer and exits."""
    command = f"{sys.executable} -m {sqlite_writer_process.__name__} {database_path} | head -c 0"
    return await asyncio.create_subprocess_shell(
        command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, start_new_session=True
    )


async def dying_sqlite_writer(database: Database) -> GroupCommitWriter:
    writer = await one_lane_writer(database)
    runner = writer._runners[0]
    assert isinstance(runner, SqliteBatchRunner)
    await runner.discard()
    runner._process = await sqlite_writer_that_dies_before_answering(runner._path)
    return writer


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_a_batch_committed_but_unanswered_succeeds_once(
    database_url: str, observer: Database, backend: str
) -> None:
    database = Database(database_url)
    await make_account(observer, "acctlost", credit_limit=None)
    writer = await dying_sqlite_writer(database)
    try:
        accepted = message_write()
        outcomes = await asyncio.gather(
            writer.write(accepted),
            writer.write_background([add_to_balance("acctlost")]),
            writer.write_background([claim_like("acctlost")]),
            return_exceptions=True,
        )
        assert outcomes[:2] == [None, []]
        assert isinstance(outcomes[2], CommittedRowsLost)  # committed, but its rows are gone
        assert await balance_of(observer, "acctlost") == Decimal(1)
        async with observer.engine.connect() as conn:
            count = await conn.scalar(select(func.count()).where(messages.c.uuid == uuid_of(accepted)))
        assert count == 1
        # The next batch goes to a new writer process.
        await writer.write(message_write())
    finally:
        await writer.stop()
        await database.dispose()


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_a_background_batch_unanswered_is_told_by_its_marker(
    database_url: str, observer: Database, backend: str
) -> None:
    """A worker's writes insert no row known in advance; the runner's commit marker tells all the
    same that the dead process committed them."""
    database = Database(database_url)
    await make_account(observer, "acctlost", credit_limit=None)
    writer = await dying_sqlite_writer(database)
    try:
        assert await writer.write_background([add_to_balance("acctlost")]) == []
    finally:
        await writer.stop()
        await database.dispose()
    assert await balance_of(observer, "acctlost") == Decimal(1)  # written once, by the dead process


async def sqlite_writer_that_dies_before_committing() -> asyncio.subprocess.Process:
    """A writer process that reads the start of a batch and exits: nothing of it is written."""
    return await asyncio.create_subprocess_shell(
        "head -c 4 >/dev/null",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_a_batch_whose_writer_died_before_committing_is_written_again(
    database_url: str, observer: Database, backend: str
) -> None:
    database = Database(database_url)
    await make_account(observer, "acctlost", credit_limit=None)
    writer = await one_lane_writer(database)
    runner = writer._runners[0]
    assert isinstance(runner, SqliteBatchRunner)
    try:
        await runner.discard()
        runner._process = await sqlite_writer_that_dies_before_committing()
        accepted = message_write()
        await asyncio.gather(writer.write(accepted), writer.write_background([add_to_balance("acctlost")]))
    finally:
        await writer.stop()
        await database.dispose()
    assert uuid_of(accepted) in await stored_uuids(observer)
    assert await balance_of(observer, "acctlost") == Decimal(1)  # by the next writer process, once


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_a_writer_that_stops_cleanly_leaves_no_marker(
    database_url: str, observer: Database, backend: str
) -> None:
    database = Database(database_url)
    writer = await one_lane_writer(database)
    async with observer.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(commit_markers)) == 1
    await writer.stop()
    await database.dispose()
    async with observer.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(commit_markers)) == 0


async def doubtful_writer(database: Database) -> GroupCommitWriter:
    """A one-lane writer that gives up asking at once (in_doubt_seconds) when the database is away."""
    writer = GroupCommitWriter(database, max_batch=256, window_seconds=0)
    writer._runners = [PostgresBatchRunner(database.engine, in_doubt_seconds=0.2)]
    writer.start()
    await writer.write(message_write())  # the runner now holds a connection
    return writer


async def still_resolving(
    writer: GroupCommitWriter, doubt: CommitInDoubt, proxy: CommitAnswerProxy
) -> asyncio.Task[bool]:
    """Starts resolving the doubt; returns once it has tried to ask a few more times through the
    proxy (the database away, or the transaction still running) and still has no answer."""
    before = proxy.tries
    resolving = asyncio.create_task(writer.resolve(doubt))

    async def tried() -> None:
        while proxy.tries < before + 3:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(tried(), timeout=10)
    assert not resolving.done(), "resolved before the database could say"
    return resolving


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("landed", [True, False], ids=["committed", "aborted"])
async def test_a_batch_in_doubt_is_resolved_once_the_database_is_back(
    proxied: Database, commit_proxy: CommitAnswerProxy, observer: Database, backend: str, landed: bool
) -> None:
    await make_account(observer, "acctlost", credit_limit=None)
    writer = await doubtful_writer(proxied)
    try:
        # The COMMIT lands (or never reaches the server), then the database is out of reach.
        commit_proxy.lose_next_commit_answer(commit_reaches_server=landed, then_refuse=True)
        with pytest.raises(CommitInDoubt) as doubt:
            await writer.write_background([add_to_balance("acctlost")])
        resolving = await still_resolving(writer, doubt.value, commit_proxy)
        commit_proxy.accept_again()
        assert await asyncio.wait_for(resolving, timeout=10) is landed
    finally:
        await writer.stop()
    assert await balance_of(observer, "acctlost") == Decimal(1 if landed else 0)


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_transaction_still_in_progress_is_asked_about_until_it_ends(
    proxied: Database, commit_proxy: CommitAnswerProxy, observer: Database, backend: str
) -> None:
    """The server has not noticed that its client is gone: the transaction runs on, past the
    runner's in_doubt_seconds, and resolve waits for its end."""
    await make_account(observer, "acctlost", credit_limit=None)
    writer = await doubtful_writer(proxied)
    try:
        commit_proxy.hold_next_commit()
        with pytest.raises(CommitInDoubt) as doubt:
            await writer.write_background([add_to_balance("acctlost")])
        resolving = await still_resolving(writer, doubt.value, commit_proxy)
        commit_proxy.release_held()  # the server sees its client gone and rolls back
        assert await asyncio.wait_for(resolving, timeout=10) is False
    finally:
        await writer.stop()
    assert await balance_of(observer, "acctlost") == Decimal(0)


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_transaction_the_server_never_reached_did_not_commit_and_one_too_old_did(
    database: Database, backend: str
) -> None:
    """An id past the server's next one was lost whole in a crash; an id too old for txid_status
    (NULL) is taken as committed, which writes nothing twice."""
    runner = PostgresBatchRunner(database.engine)
    async with database.engine.connect() as conn:
        current = await conn.scalar(select(func.txid_current()))
    assert isinstance(current, int)
    assert await runner.resolve(CommitInDoubt("lost in a crash", current + 1_000_000)) is False
    assert await runner.resolve(CommitInDoubt("long ago", 3)) is True
