"""A batch whose COMMIT answer is lost (the connection, or SQLite's writer process, dies after the
COMMIT went out) is settled by what actually happened to it: written once, reported written only
if it was, and never written twice."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from tests.store.commit_answer_proxy import CommitAnswerProxy
from tests.store.test_group_commit import balance_of, make_account, message_write, stored_uuids, uuid_of
from tidings.store import sqlite_writer_process
from tidings.store.batch_runners import SqliteBatchRunner, batch_runner
from tidings.store.database import Database
from tidings.store.group_commit import GroupCommitWriter
from tidings.store.outage import CommitInDoubt, CommittedRowsLost, database_unavailable
from tidings.store.statements import Execute
from tidings.store.tables import messages


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


@pytest.fixture
async def proxied(database_url: str, commit_proxy: CommitAnswerProxy) -> AsyncIterator[Database]:
    port = await commit_proxy.start()
    db = Database(make_url(database_url).set(port=port).render_as_string(hide_password=False))
    yield db
    await db.dispose()


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
async def test_sqlite_a_background_batch_unanswered_fails_in_doubt(
    database_url: str, observer: Database, backend: str
) -> None:
    database = Database(database_url)
    await make_account(observer, "acctlost", credit_limit=None)
    writer = await dying_sqlite_writer(database)
    try:
        with pytest.raises(CommitInDoubt):
            await writer.write_background([add_to_balance("acctlost")])
    finally:
        await writer.stop()
        await database.dispose()
    assert await balance_of(observer, "acctlost") == Decimal(1)  # written once, by the dead process
