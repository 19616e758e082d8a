"""Small helpers for the webhook tests that drive a real Runtime: make and submit a message, look at
the webhook jobs and recorded attempts, wait for a condition with a timeout."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import RowMapping

from tidings.domain.content import Text
from tidings.domain.message import Channel, Message, MessageType
from tidings.queue.jobs import enqueue
from tidings.runtime import Runtime
from tidings.services.webhook_dispatch import SendWebhook, webhook_job
from tidings.store.accounts import get_account
from tidings.store.tables import jobs, message_events, webhook_attempts


def text_message(
    api_key: str,
    text: str = "hello",
    *,
    channel: Channel = Channel.SMS,
    to: str = "447700900000",
    sender: str = "Acme",
    **fields: Any,
) -> Message:
    """An outbound text message as the API would have accepted it."""
    return Message(
        uuid=str(uuid.uuid4()),
        account_id=api_key,
        channel=channel,
        message_type=MessageType.TEXT,
        to=to,
        sender=sender,
        content=Text(text),
        created_at=datetime.now(UTC),
        **fields,
    )


async def submit(runtime: Runtime, message: Message) -> None:
    """What the API does once it has authenticated the caller: the durable accept."""
    async with runtime.database.read() as conn:
        owner = await get_account(conn, message.account_id)
    assert owner is not None, f"no account {message.account_id}"
    await runtime.submitter.submit(message, owner)


async def queue(runtime: Runtime, **webhook: Any) -> None:
    """A webhook job queued as the status and inbound services queue theirs, then the worker woken."""
    async with runtime.database.begin() as conn:
        await enqueue(conn, [webhook_job(**webhook)], now=datetime.now(UTC))
    assert runtime.worker is not None
    runtime.worker.wake()


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.02)


async def webhook_jobs(runtime: Runtime, message_uuid: str) -> list[RowMapping]:
    """The message's `send_webhook` jobs, oldest first."""
    async with runtime.database.read() as conn:
        query = select(jobs).where(jobs.c.kind == SendWebhook.name).order_by(jobs.c.id)
        rows = (await conn.execute(query)).mappings().all()
    return [row for row in rows if row["payload"].get("message_uuid") == message_uuid]


async def until_webhooks_settled(runtime: Runtime, message_uuid: str, dead: int = 0) -> list[RowMapping]:
    """Waits until none of the message's webhook jobs is open, `dead` of them buried and the rest
    done (a done job is deleted); returns the dead ones. Callers wait on it once the jobs exist."""

    async def settled() -> bool:
        found = await webhook_jobs(runtime, message_uuid)
        return len(found) == dead and all(job["state"] == "dead" for job in found)

    await until(settled, what=f"the webhook jobs settled, {dead} of them dead")
    return await webhook_jobs(runtime, message_uuid)


async def attempts_for(runtime: Runtime, message_uuid: str) -> list[RowMapping]:
    """The recorded delivery attempts of the message's webhooks, in the order they were made."""
    async with runtime.database.read() as conn:
        query = (
            select(webhook_attempts)
            .where(webhook_attempts.c.message_uuid == message_uuid)
            .order_by(webhook_attempts.c.attempted_at, webhook_attempts.c.id)
        )
        return list((await conn.execute(query)).mappings().all())


async def event_ids(runtime: Runtime, message_uuid: str) -> dict[str, str]:
    """status -> the id of the event that recorded it"""
    async with runtime.database.read() as conn:
        query = select(message_events.c.status, message_events.c.id).where(
            message_events.c.message_uuid == message_uuid
        )
        return {row.status: row.id for row in await conn.execute(query)}
