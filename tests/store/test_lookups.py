"""The worker's coalesced reads (store/lookups.py), on both backends: many loads at once answer
each key right (and, for the webhooks' signature secrets, in one query), the lookups' own
connection holds no transaction between them, and on PostgreSQL it outlives the server closing
it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.api.support import send, until_status
from tests.conftest import PG_ADMIN_DSN
from tidings.auth.webhook_signing import verify_webhook
from tidings.domain.message import Status
from tidings.runtime import Runtime
from tidings.services.accounts import NewAccountCredentials, create_account
from tidings.services.applications import ApplicationDraft, create_application
from tidings.services.numbers import NumbersService
from tidings.services.webhook_dispatch import SignatureSecrets
from tidings.store.lookups import Lookups
from tidings.store.tables import message_parts

SMS = {"message_type": "text", "channel": "sms", "from": "Tidings", "text": "hello"}


@pytest.fixture
async def lookups(runtime: Runtime) -> AsyncIterator[Lookups]:
    """Lookups of the test's own, beside the runtime worker's, closed at the end."""
    made = Lookups(runtime.database)
    yield made
    await made.close()


async def _sent(client: httpx.AsyncClient, account: NewAccountCredentials, count: int) -> list[str]:
    return [await send(client, account, {**SMS, "to": f"4477009000{n:02d}"}) for n in range(count)]


async def test_loads_made_together_each_get_their_own_message(
    lookups: Lookups, client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    uuids = await _sent(client, account, 12)
    asked = [*uuids, "00000000-0000-0000-0000-000000000000", *reversed(uuids)]
    found = await asyncio.gather(*(lookups.messages.load(uuid) for uuid in asked))
    assert [tracked.message.uuid if tracked else None for tracked in found] == [
        *uuids,
        None,
        *reversed(uuids),
    ]
    assert all(tracked.message.to.startswith("4477009000") for tracked in found if tracked)


async def test_parts_are_found_by_their_provider_reference(
    runtime: Runtime, lookups: Lookups, client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    uuids = await _sent(client, account, 3)
    for uuid in uuids:
        await until_status(client, account, uuid, "delivered")
    async with runtime.database.read() as conn:
        columns = (message_parts.c.connector, message_parts.c.provider_ref, message_parts.c.message_uuid)
        rows = (await conn.execute(select(*columns))).all()
    found = await asyncio.gather(
        *(lookups.part(connector, ref, account.api_key) for connector, ref, _ in rows),
        lookups.part(rows[0][0], "no-such-reference", None),
        lookups.part(rows[0][0], rows[0][1], "another-account"),
    )
    assert [part.tracked.message.uuid if part else None for part in found] == [
        *(uuid for _, _, uuid in rows),
        None,
        None,
    ]
    assert sorted(uuid for _, _, uuid in rows) == sorted(uuids)
    assert all(part.part.status is Status.DELIVERED for part in found if part)


async def test_signers_asked_for_together_share_one_query_and_one_decryption(
    runtime: Runtime, lookups: Lookups, account: NewAccountCredentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim's webhooks start together, and with nothing cached (a worker's first claim) each
    used to read the account's secret in a query of its own."""
    other = await create_account(runtime.database, runtime.box, name="other")
    queries: list[str] = []

    def seen(*args: object) -> None:
        statement = str(args[2])
        if "signature_secret_enc" in statement:
            queries.append(statement)

    openings: list[str] = []
    opened = runtime.box.open

    def counted_open(sealed: str) -> str:
        openings.append(sealed)
        return opened(sealed)

    monkeypatch.setattr(runtime.box, "open", counted_open)
    secrets = SignatureSecrets(lookups.sealed_signature_secrets.load, runtime.box)
    engine = runtime.database.read_engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        asked = [account.api_key] * 40 + [other.api_key] * 10 + ["no-such-account"]
        signers = await asyncio.gather(*(secrets.signer(api_key) for api_key in asked))
    finally:
        event.remove(engine, "before_cursor_execute", seen)

    assert (len(queries), len(openings)) == (1, 2)
    assert len({id(signer) for signer in signers[:40]}) == 1 and signers[-1] is None
    for signer, credentials in ((signers[0], account), (signers[40], other)):
        assert signer is not None
        token = signer.sign(b"{}", api_key=credentials.api_key)
        assert verify_webhook(token, b"{}", credentials.signature_secret)
        assert not verify_webhook(
            token, b"{}", (other if credentials is account else account).signature_secret
        )
    assert await secrets.signer(account.api_key) is signers[0]  # cached: no further query
    assert len(queries) == 1


async def test_inbound_routing_reads_made_together_share_one_query_a_kind(
    runtime: Runtime, lookups: Lookups, account: NewAccountCredentials
) -> None:
    """The inbound messages of one moment are routed by one query for their numbers, one for
    their accounts' settings and one for their applications; an application is only ever its
    own account's."""
    other = await create_account(runtime.database, runtime.box, name="other")
    own = await create_application(
        runtime.database,
        account.api_key,
        ApplicationDraft("own", None, {"messages": {"version": "v1"}}, None),
    )
    theirs = await create_application(
        runtime.database,
        other.api_key,
        ApplicationDraft("theirs", None, {"messages": {"version": "v1"}}, None),
    )
    numbers = NumbersService(runtime.database)
    msisdns = [f"4477009001{n:02d}" for n in range(10)]
    for msisdn in msisdns:
        await numbers.add(account.api_key, "GB", msisdn, now=datetime.now(UTC), app_id=own.application.id)
    queries: list[str] = []

    def seen(*args: object) -> None:
        if str(args[2]).startswith("SELECT"):  # not the kept connection's own set-up
            queries.append(str(args[2]))

    engine = runtime.database.read_engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        found, settings, applications = await asyncio.gather(
            asyncio.gather(*(lookups.number(msisdn) for msisdn in [*msisdns, "447700999999"])),
            asyncio.gather(
                *(lookups.inbound_settings(api_key) for api_key in [account.api_key, other.api_key])
            ),
            asyncio.gather(
                lookups.application(own.application.id, account.api_key),
                lookups.application(theirs.application.id, account.api_key),
                lookups.application(theirs.application.id, other.api_key),
            ),
        )
    finally:
        event.remove(engine, "before_cursor_execute", seen)

    assert [number.msisdn if number else None for number in found] == [*msisdns, None]
    assert all(number.account_id == account.api_key for number in found if number)
    assert [s.currency if s else None for s in settings] == ["EUR", "EUR"]
    assert [application.id if application else None for application in applications] == [
        own.application.id,
        None,
        theirs.application.id,
    ]
    assert len(queries) == 3


async def test_a_lookup_sees_what_was_committed_since_the_one_before(
    lookups: Lookups, client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    """The kept connection is in autocommit, so it holds no transaction between lookups: on
    SQLite one left open would go on showing the database as it was at that transaction's first
    read (and hold back every checkpoint)."""
    (first,) = await _sent(client, account, 1)
    assert await lookups.messages.load(first) is not None
    (second,) = await _sent(client, account, 1)
    found = await lookups.messages.load(second)
    assert found is not None and found.message.uuid == second

    async def in_transaction(conn: AsyncConnection) -> bool:
        driver = (await conn.get_raw_connection()).driver_connection
        if isinstance(driver, asyncpg.Connection):
            return driver.is_in_transaction()
        return bool(driver.in_transaction)

    assert await lookups._kept.run(in_transaction) is False


@pytest.mark.parametrize("backend", ["postgresql"])  # an SQLite file has no server to close it
async def test_the_lookups_connection_is_replaced_when_the_server_closed_it(
    lookups: Lookups, client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    (uuid,) = await _sent(client, account, 1)
    assert await lookups.messages.load(uuid) is not None

    async def backend_pid(conn: AsyncConnection) -> int:
        return int((await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one())

    # The kept connection's own server process: the runtime's worker keeps one of its own.
    pid = await lookups._kept.run(backend_pid)
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        ended = await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    assert ended is True
    tracked = await lookups.messages.load(uuid)
    assert tracked is not None and tracked.message.uuid == uuid


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite plans every statement afresh
async def test_a_generic_plan_finds_parts_by_reference_not_by_connector(runtime: Runtime) -> None:
    """A prepared statement may get a generic plan, made while the tables are small and kept for
    the connection's life. Asked for a batch of references on an empty table, that plan must
    still probe the index by reference: led by the connector, it filtered every part the
    connector ever sent (migration 0007)."""
    async with runtime.database.read() as conn:
        await conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        await conn.exec_driver_sql(
            "PREPARE by_reference(varchar, varchar[]) AS SELECT message_uuid FROM message_parts"
            " WHERE connector = $1 AND provider_ref = ANY($2)"
        )
        plan = "\n".join(
            (await conn.exec_driver_sql("EXPLAIN EXECUTE by_reference('simulator', '{a,b,c}')")).scalars()
        )
        await conn.exec_driver_sql("DEALLOCATE by_reference")
    assert "Index Cond: (((provider_ref)::text = ANY" in plan, plan


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_the_lookups_plan_each_query_for_its_keys(
    lookups: Lookups, client: httpx.AsyncClient, account: NewAccountCredentials
) -> None:
    """Never a generic plan (store/lookups.py says why), however often a statement runs."""
    uuids = await _sent(client, account, 2)
    for _ in range(12):  # PostgreSQL weighs a generic plan from the sixth run of a statement
        assert await lookups.messages.load(uuids[0]) is not None
        assert await lookups.part("simulator", "no-such-reference", None) is None

    async def plans(conn: AsyncConnection) -> tuple[int, int]:
        found = await conn.exec_driver_sql(
            "SELECT sum(generic_plans), sum(custom_plans) FROM pg_prepared_statements"
            " WHERE cardinality(parameter_types) > 0"  # one without parameters has one plan
        )
        generic, custom = found.one()
        return int(generic), int(custom)

    generic, custom = await lookups._kept.run(plans)
    assert (generic, custom >= 24) == (0, True)
