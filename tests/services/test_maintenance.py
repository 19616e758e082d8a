"""The purge that keeps tables bounded: what is past keeping goes, a chunk at a time; what is not
stays, whichever account it belongs to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from tests.services.test_delivery import events, message, parts, sms, submit, until_status
from tidings.runtime import Runtime
from tidings.services import maintenance
from tidings.services.accounts import NewAccountCredentials, create_account
from tidings.services.maintenance import Maintenance
from tidings.store.tables import message_events, message_parts, messages, webhook_attempts

RETENTION = timedelta(days=90)


async def delivered(runtime: Runtime, account: NewAccountCredentials, *, age: timedelta) -> str:
    sent = sms(account, created_at=datetime.now(UTC) - age)
    await submit(runtime, account, sent)
    await until_status(runtime, sent.uuid, "delivered")
    return sent.uuid


async def attempt(runtime: Runtime, account: NewAccountCredentials, *, age: timedelta) -> None:
    async with runtime.database.begin() as conn:
        await conn.execute(
            insert(webhook_attempts).values(
                job_id=1,
                event_id="e",
                account_id=account.api_key,
                url="http://127.0.0.1/status",
                attempted_at=datetime.now(UTC) - age,
                status_code=200,
            )
        )


async def count(runtime: Runtime, table: object, *where: object) -> int:
    async with runtime.database.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one())


async def test_messages_past_retention_go_with_their_parts_and_events_in_every_account(
    runtime: Runtime, account: NewAccountCredentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maintenance, "CHUNK", 2)  # several chunks per account
    other = await create_account(runtime.database, runtime.box, name="other")
    old = [
        await delivered(runtime, who, age=timedelta(days=91)) for who in (account, account, account, other)
    ]
    young = await delivered(runtime, account, age=timedelta(days=89))
    for who, days in ((account, 91), (account, 91), (account, 91), (other, 91), (account, 1)):
        await attempt(runtime, who, age=timedelta(days=days))

    purged = await Maintenance(runtime.database, message_retention=RETENTION).purge()

    assert (purged.messages, purged.webhook_attempts) == (4, 4)
    assert await count(runtime, messages, messages.c.uuid.in_(old)) == 0
    assert await count(runtime, message_parts, message_parts.c.message_uuid.in_(old)) == 0
    assert await count(runtime, message_events, message_events.c.message_uuid.in_(old)) == 0
    assert (await message(runtime, young))["status"] == "delivered"
    assert [part["status"] for part in await parts(runtime, young)] == ["delivered"]
    assert [event["status"] for event in await events(runtime, young)] == ["submitted", "delivered"]
    assert await count(runtime, webhook_attempts) == 1


async def test_no_retention_keeps_every_message(runtime: Runtime, account: NewAccountCredentials) -> None:
    kept = await delivered(runtime, account, age=timedelta(days=3650))

    purged = await Maintenance(runtime.database, message_retention=None).purge()

    assert purged.messages == 0
    assert (await message(runtime, kept))["status"] == "delivered"
