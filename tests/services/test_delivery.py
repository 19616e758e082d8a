"""Delivery and status recording end to end through a running Runtime with the simulator connector.

Messages are handed to the runtime's submitter (the durable write the API does), then the worker
routes them, the simulator reports back after its 0.2 s delay, and status webhooks go out.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import RowMapping

from tests.receiver import WebhookReceiver
from tidings.auth.webhook_signing import verify_webhook
from tidings.channels.base import ProviderUnavailable, SubmitRejected, SubmitResult
from tidings.channels.simulator.connector import SimulatorConnector
from tidings.domain.delivery_errors import DeliveryError, DeliveryErrorCode
from tidings.domain.message import Channel, Message, MessageType
from tidings.queue.jobs import DONE, NewJob, enqueue
from tidings.runtime import Runtime
from tidings.services.accounts import NewAccountCredentials
from tidings.services.job_kinds import JobKind
from tidings.store.accounts import get_account, set_status_url
from tidings.store.tables import jobs, message_events, messages

ERRORS = "https://developer.vonage.com/api-errors/messages"
TEXT_161 = "x" * 161  # GSM-7: one character too many for one SMS, so two segments of 153


def sms(account: NewAccountCredentials, text: str = "hello", **fields: Any) -> Message:
    values: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "account_id": account.api_key,
        "channel": Channel.SMS,
        "message_type": MessageType.TEXT,
        "to": "447700900000",
        "sender": "Acme",
        "content": {"text": text},
        "created_at": datetime.now(UTC),
    }
    values.update(fields)
    return Message(**values)


async def submit(runtime: Runtime, credentials: NewAccountCredentials, sent: Message) -> None:
    """What the API does once it has authenticated the caller: the durable accept."""
    async with runtime.database.engine.connect() as conn:
        owner = await get_account(conn, credentials.api_key)
    assert owner is not None
    await runtime.submitter.submit(sent, owner)


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def message(runtime: Runtime, message_uuid: str) -> RowMapping:
    async with runtime.database.engine.connect() as conn:
        query = select(messages).where(messages.c.uuid == message_uuid)
        return (await conn.execute(query)).mappings().one()


async def until_status(runtime: Runtime, message_uuid: str, status: str) -> RowMapping:
    async def reached() -> bool:
        return (await message(runtime, message_uuid))["status"] == status

    await until(reached)
    return await message(runtime, message_uuid)


async def events(runtime: Runtime, message_uuid: str) -> list[RowMapping]:
    async with runtime.database.engine.connect() as conn:
        query = (
            select(message_events)
            .where(message_events.c.message_uuid == message_uuid)
            .order_by(message_events.c.occurred_at)
        )
        return list((await conn.execute(query)).mappings().all())


async def jobs_of(runtime: Runtime, kind: JobKind, message_uuid: str) -> list[RowMapping]:
    async with runtime.database.engine.connect() as conn:
        query = select(jobs).where(jobs.c.kind == kind.value).order_by(jobs.c.id)
        rows = (await conn.execute(query)).mappings().all()
        return [r for r in rows if r["payload"].get("message_uuid") == message_uuid]


async def add_jobs(runtime: Runtime, *new_jobs: NewJob) -> None:
    async with runtime.database.begin() as conn:
        await enqueue(conn, list(new_jobs), now=datetime.now(UTC), default_max_attempts=3)
    assert runtime.worker is not None
    runtime.worker.wake()


async def until_jobs_done(runtime: Runtime, kind: JobKind, message_uuid: str, count: int) -> None:
    async def all_done() -> bool:
        found = await jobs_of(runtime, kind, message_uuid)
        return len(found) == count and all(j["state"] == DONE for j in found)

    await until(all_done)


def report(message_uuid: str, status: str, **extra: Any) -> NewJob:
    return NewJob(
        JobKind.PROVIDER_REPORT.value,
        {"message_uuid": message_uuid, "status": status, "provider_ref": "ref", **extra},
    )


async def test_an_accepted_message_is_submitted_then_delivered(
    runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    sent = sms(account, TEXT_161, client_ref="order-7", ttl=3600, webhook_url=f"{receiver.url}/status")
    await submit(runtime, account, sent)

    submitted, delivered = await asyncio.to_thread(receiver.wait_for, 2)
    row = await until_status(runtime, sent.uuid, "delivered")
    assert row["provider"] == "simulator"
    assert row["provider_ref"] == uuid.uuid5(uuid.NAMESPACE_URL, f"tidings-simulator:{sent.uuid}").hex
    assert row["segments"] == 2
    assert (Decimal(row["price"]), row["currency"]) == (Decimal("0.014"), "EUR")
    assert row["error_code"] is None

    recorded = await events(runtime, sent.uuid)
    assert [(e["status"], e["webhook_url"], e["error_code"]) for e in recorded] == [
        ("submitted", f"{receiver.url}/status", None),
        ("delivered", f"{receiver.url}/status", None),
    ]
    # The simulated handset reports delivery after the configured delay.
    gap = recorded[1]["occurred_at"] - recorded[0]["occurred_at"]
    assert gap >= timedelta(seconds=0.19)

    assert submitted.path == delivered.path == "/status"
    first, second = submitted.json(), delivered.json()
    common = {
        "message_uuid": sent.uuid,
        "to": "447700900000",
        "from": "Acme",
        "channel": "sms",
        "client_ref": "order-7",
        "usage": {"currency": "EUR", "price": "0.014"},
        "sms": {"count_total": "2"},
    }
    assert {k: v for k, v in first.items() if k != "timestamp"} == {**common, "status": "submitted"}
    assert {k: v for k, v in second.items() if k != "timestamp"} == {
        **common,
        "status": "delivered",
        "destination": {"network_code": "99999"},
    }
    for webhook in (submitted, delivered):
        assert verify_webhook(webhook.bearer, webhook.body, account.signature_secret)
        assert webhook.headers["content-type"] == "application/json"

    for kind, count in [
        (JobKind.DELIVER_MESSAGE, 1),
        (JobKind.PROVIDER_REPORT, 1),
        (JobKind.SEND_WEBHOOK, 2),
    ]:
        await until_jobs_done(runtime, kind, sent.uuid, count)


async def test_a_message_whose_ttl_ran_out_before_delivery_is_rejected_with_1360(
    runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    old = datetime.now(UTC) - timedelta(seconds=120)
    sent = sms(account, ttl=60, created_at=old, client_ref="late", webhook_url=f"{receiver.url}/status")
    await submit(runtime, account, sent)

    (webhook,) = await asyncio.to_thread(receiver.wait_for, 1)
    row = await until_status(runtime, sent.uuid, "rejected")
    assert row["error_code"] == 1360
    assert row["provider"] is None and row["provider_ref"] is None  # never handed to the carrier
    (event,) = await events(runtime, sent.uuid)
    assert (event["status"], event["error_code"]) == ("rejected", 1360)

    body = webhook.json()
    assert body["timestamp"].endswith("Z")
    # (`usage` is left out of the comparison: the accept-time price stays on a TTL rejection.)
    assert {k: body[k] for k in ("message_uuid", "to", "from", "status", "channel", "client_ref")} == {
        "message_uuid": sent.uuid,
        "to": "447700900000",
        "from": "Acme",
        "status": "rejected",
        "channel": "sms",
        "client_ref": "late",
    }
    assert body["error"] == {
        "type": f"{ERRORS}#1360",
        "title": "1360",
        "detail": DeliveryError.of(DeliveryErrorCode.TTL_ACTIVATED).detail,
        "instance": event["id"].replace("-", ""),
    }
    assert "destination" not in body  # no carrier ever saw it
    assert await jobs_of(runtime, JobKind.PROVIDER_REPORT, sent.uuid) == []

    # A late delivery report cannot bring a rejected message back.
    await add_jobs(runtime, report(sent.uuid, "delivered"))
    await until_jobs_done(runtime, JobKind.PROVIDER_REPORT, sent.uuid, 1)
    assert (await message(runtime, sent.uuid))["status"] == "rejected"
    assert len(await events(runtime, sent.uuid)) == 1


async def test_reports_never_move_a_status_backwards_nor_repeat_it(
    runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    sent = sms(account, webhook_url=f"{receiver.url}/status")
    await submit(runtime, account, sent)
    await until_status(runtime, sent.uuid, "delivered")
    await until_jobs_done(runtime, JobKind.PROVIDER_REPORT, sent.uuid, 1)

    await add_jobs(
        runtime,
        report(sent.uuid, "submitted"),  # backwards
        report(sent.uuid, "delivered", network_code="23410"),  # a duplicate receipt
    )
    await until_jobs_done(runtime, JobKind.PROVIDER_REPORT, sent.uuid, 3)
    assert (await message(runtime, sent.uuid))["status"] == "delivered"
    assert [e["status"] for e in await events(runtime, sent.uuid)] == ["submitted", "delivered"]
    assert len(await jobs_of(runtime, JobKind.SEND_WEBHOOK, sent.uuid)) == 2

    # A report that does move the message forward is still applied.
    await add_jobs(runtime, report(sent.uuid, "read"))
    await until_jobs_done(runtime, JobKind.PROVIDER_REPORT, sent.uuid, 4)
    assert [e["status"] for e in await events(runtime, sent.uuid)] == ["submitted", "delivered", "read"]
    received = await asyncio.to_thread(receiver.wait_for, 3)
    assert [r.json()["status"] for r in received] == ["submitted", "delivered", "read"]


async def test_a_report_for_an_unknown_message_is_dropped(runtime: Runtime) -> None:
    ghost = str(uuid.uuid4())
    await add_jobs(runtime, report(ghost, "delivered"))
    await until_jobs_done(runtime, JobKind.PROVIDER_REPORT, ghost, 1)
    assert await events(runtime, ghost) == []


async def test_a_repeated_delivery_job_does_not_submit_twice(
    runtime: Runtime, account: NewAccountCredentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    original = SimulatorConnector.submit

    async def counting(self: SimulatorConnector, message: Message) -> SubmitResult:
        calls.append(message.uuid)
        return await original(self, message)

    monkeypatch.setattr(SimulatorConnector, "submit", counting)
    sent = sms(account)
    await submit(runtime, account, sent)
    await until_status(runtime, sent.uuid, "delivered")

    await add_jobs(runtime, NewJob(JobKind.DELIVER_MESSAGE.value, {"message_uuid": sent.uuid}))
    await until_jobs_done(runtime, JobKind.DELIVER_MESSAGE, sent.uuid, 2)
    assert calls == [sent.uuid]
    assert [e["status"] for e in await events(runtime, sent.uuid)] == ["submitted", "delivered"]


async def test_status_webhook_goes_to_the_request_webhook_url_before_the_account_status_url(
    runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    async with runtime.database.begin() as conn:
        assert await set_status_url(conn, account.api_key, f"{receiver.url}/account")
    sent = sms(account, webhook_url=f"{receiver.url}/request")
    await submit(runtime, account, sent)
    received = await asyncio.to_thread(receiver.wait_for, 2)
    assert [r.path for r in received] == ["/request", "/request"]


async def test_status_webhook_falls_back_to_the_account_status_url(
    runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    async with runtime.database.begin() as conn:
        assert await set_status_url(conn, account.api_key, f"{receiver.url}/account")
    sent = sms(account)
    await submit(runtime, account, sent)
    received = await asyncio.to_thread(receiver.wait_for, 2)
    assert [(r.path, r.json()["status"]) for r in received] == [
        ("/account", "submitted"),
        ("/account", "delivered"),
    ]
    assert [e["webhook_url"] for e in await events(runtime, sent.uuid)] == [f"{receiver.url}/account"] * 2


async def test_without_any_status_url_no_webhook_job_is_made(
    runtime: Runtime, account: NewAccountCredentials
) -> None:
    sent = sms(account)
    await submit(runtime, account, sent)
    await until_status(runtime, sent.uuid, "delivered")
    recorded = await events(runtime, sent.uuid)
    assert [(e["status"], e["webhook_url"]) for e in recorded] == [("submitted", None), ("delivered", None)]
    assert await jobs_of(runtime, JobKind.SEND_WEBHOOK, sent.uuid) == []


async def test_a_delivery_job_that_is_buried_rejects_the_message_with_1331(
    runtime: Runtime,
    account: NewAccountCredentials,
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts = 0

    async def unavailable(self: SimulatorConnector, message: Message) -> SubmitResult:
        nonlocal attempts
        attempts += 1
        raise ProviderUnavailable("carrier link down", retry_after=timedelta(milliseconds=5))

    monkeypatch.setattr(SimulatorConnector, "submit", unavailable)
    sent = sms(account, webhook_url=f"{receiver.url}/status")
    await submit(runtime, account, sent)

    (webhook,) = await asyncio.to_thread(receiver.wait_for, 1)
    row = await until_status(runtime, sent.uuid, "rejected")
    assert attempts == runtime.settings.job_max_attempts
    assert (row["error_code"], row["error_detail"]) == (1331, "carrier link down")
    (deliver,) = await jobs_of(runtime, JobKind.DELIVER_MESSAGE, sent.uuid)
    assert (deliver["state"], deliver["attempts"]) == ("dead", runtime.settings.job_max_attempts)
    body = webhook.json()
    assert body["status"] == "rejected"
    assert body["error"]["type"] == f"{ERRORS}#1331"
    assert body["error"]["title"] == "1331"
    assert body["error"]["detail"] == "carrier link down"


async def test_a_submit_the_carrier_refuses_rejects_the_message_at_once(
    runtime: Runtime,
    account: NewAccountCredentials,
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts = 0

    async def refuse(self: SimulatorConnector, message: Message) -> SubmitResult:
        nonlocal attempts
        attempts += 1
        raise SubmitRejected(DeliveryError.of(DeliveryErrorCode.ILLEGAL_NUMBER))

    monkeypatch.setattr(SimulatorConnector, "submit", refuse)
    sent = sms(account, webhook_url=f"{receiver.url}/status")
    await submit(runtime, account, sent)
    (webhook,) = await asyncio.to_thread(receiver.wait_for, 1)
    assert attempts == 1
    assert webhook.json()["error"]["title"] == "1240"
    assert (await message(runtime, sent.uuid))["error_code"] == 1240
    await until_jobs_done(runtime, JobKind.DELIVER_MESSAGE, sent.uuid, 1)
