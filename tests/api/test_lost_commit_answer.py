"""A send whose batch loses its COMMIT answer, through the app (on PostgreSQL, and SQLite's writer
process dying after its commit): a batch that committed answers 202 with the stored message's
uuid, and one whose fate cannot be found out answers the outage's 503 problem (never a 500)
saying so, since the client may send it again with its Idempotency-Key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from tests.api.support import assert_problem, basic
from tests.conftest import suite_settings
from tests.store.commit_answer_proxy import CommitAnswerProxy
from tests.store.test_lost_commit_answer import sqlite_writer_that_dies_before_answering
from tidings.api.app import create_app
from tidings.api.problems import IN_DOUBT_DETAIL
from tidings.config import Settings
from tidings.runtime import Role, Runtime
from tidings.services.accounts import NewAccountCredentials, create_account
from tidings.store.batch_runners import PostgresBatchRunner, SqliteBatchRunner
from tidings.store.database import Database
from tidings.store.tables import messages

SMS = {"channel": "sms", "message_type": "text", "to": "447700900000", "from": "Acme", "text": "Hi"}
# How long the writer asks about a transaction still in progress before it is in doubt: long
# enough for the server to answer, short enough for a test.
IN_DOUBT_SECONDS = 0.5


@pytest.fixture
async def runtime(
    database_url: str, commit_proxy: CommitAnswerProxy, tmp_path: Path
) -> AsyncIterator[Runtime]:
    """The API role only, so that the only COMMITs through the commit_proxy are the sends' own."""
    port = await commit_proxy.start()
    proxied = make_url(database_url).set(port=port).render_as_string(hide_password=False)
    runtime = Runtime(suite_settings(proxied, tmp_path), role=Role.API)
    runtime.writer._runners = [
        PostgresBatchRunner(runtime.database.engine, in_doubt_seconds=IN_DOUBT_SECONDS)
        for _ in runtime.writer._runners
    ]
    await runtime.start()
    yield runtime
    await runtime.stop()


@pytest.fixture
async def account(observer: Database, runtime: Runtime) -> NewAccountCredentials:
    return await create_account(observer, runtime.box, name="lost-answers")


@pytest.fixture
async def client(runtime: Runtime, account: NewAccountCredentials) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://tidings.test") as client:
        # A first send verifies and caches the credentials and opens the writer's connection, so
        # that the COMMIT the commit_proxy loses is the next send's.
        first = await client.post("/v1/messages", json=SMS, headers=basic(account))
        assert first.status_code == 202, first.text
        yield client


def assert_in_doubt(response: httpx.Response) -> None:
    """The outage's 503, with the detail that says the send may have landed."""
    problem = assert_problem(response, 503, "about:blank", "Service Unavailable")
    assert problem["detail"] == IN_DOUBT_DETAIL
    assert response.headers["Retry-After"] == "1"


async def stored_uuids(observer: Database) -> list[str]:
    async with observer.read() as conn:
        return [str(uuid) for uuid in (await conn.scalars(select(messages.c.uuid))).all()]


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_send_whose_batch_committed_unanswered_is_accepted_once(
    client: httpx.AsyncClient,
    account: NewAccountCredentials,
    commit_proxy: CommitAnswerProxy,
    observer: Database,
    backend: str,
) -> None:
    before = await stored_uuids(observer)
    commit_proxy.lose_next_commit_answer()
    response = await client.post("/v1/messages", json=SMS, headers=basic(account))
    assert commit_proxy.fired.is_set()
    assert response.status_code == 202, response.text
    after = await stored_uuids(observer)
    assert sorted(after) == sorted([*before, response.json()["message_uuid"]])  # stored, once


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_send_whose_commit_is_in_doubt_is_a_503_problem(
    client: httpx.AsyncClient,
    account: NewAccountCredentials,
    commit_proxy: CommitAnswerProxy,
    observer: Database,
    backend: str,
) -> None:
    before = await stored_uuids(observer)
    # The COMMIT lands, then the database is out of reach: nobody can say whether it did.
    commit_proxy.lose_next_commit_answer(then_refuse=True)
    response = await client.post("/v1/messages", json=SMS, headers=basic(account))
    assert commit_proxy.fired.is_set()
    assert_in_doubt(response)
    assert len(await stored_uuids(observer)) == len(before) + 1  # it did land, once


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_send_whose_transaction_stays_in_progress_is_in_doubt_and_safe_to_send_again(
    client: httpx.AsyncClient,
    account: NewAccountCredentials,
    commit_proxy: CommitAnswerProxy,
    observer: Database,
    backend: str,
) -> None:
    before = await stored_uuids(observer)
    headers = {**basic(account), "Idempotency-Key": "lost-commit-1"}
    # The database answers, but to it the transaction is still open: its COMMIT never arrived.
    commit_proxy.hold_next_commit()
    response = await client.post("/v1/messages", json=SMS, headers=headers)
    assert commit_proxy.fired.is_set()
    assert_in_doubt(response)
    # Once the server rolls it back, the same send with the same key is accepted, once.
    commit_proxy.release_held()
    again = await client.post("/v1/messages", json=SMS, headers=headers)
    assert again.status_code == 202, again.text
    assert sorted(await stored_uuids(observer)) == sorted([*before, again.json()["message_uuid"]])


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_a_send_whose_writer_died_after_its_commit_is_accepted_once(
    settings: Settings, observer: Database, backend: str
) -> None:
    runtime = Runtime(settings, role=Role.API)
    await runtime.start()
    try:
        account = await create_account(runtime.database, runtime.box, name="lost-answers")
        before = await stored_uuids(observer)
        runner = runtime.writer._runners[0]
        assert isinstance(runner, SqliteBatchRunner)
        await runner.discard()
        dying = runner._process = await sqlite_writer_that_dies_before_answering(runner._path)
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://tidings.test") as client:
            response = await client.post("/v1/messages", json=SMS, headers=basic(account))
        # The batch committed and its rows came back lost (CommittedRowsLost): the send has none.
        assert runner._process is not dying  # it died, and was dropped
        assert response.status_code == 202, response.text
        assert sorted(await stored_uuids(observer)) == sorted([*before, response.json()["message_uuid"]])
    finally:
        await runtime.stop()
