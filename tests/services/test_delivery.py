"""Delivery and status recording end to end through a running Runtime with the simulator connector.

Messages are handed to the runtime's submitter (the durable write the API does), then the worker
routes them, the simulator schedules its receipts after its 0.2 s delay, the ingress applies them
part by part, and status webhooks go out.
"""

from __future__ import annotations

import asyncio
import logging
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
from tidings.channels.base import ProviderUnavailable, Submission
from tidings.channels.simulator.connector import SimulatorConnector
from tidings.domain.content import Text
from tidings.domain.delivery_errors import DeliveryError, DeliveryErrorCode
from tidings.domain.events import Receipt
from tidings.domain.message import Channel, Message, MessageType, Status
from tidings.queue.jobs import enqueue
from tidings.queue.kinds import Job, Plan, Retry
from tidings.runtime import Runtime
from tidings.services.accounts import NewAccountCredentials
from tidings.services.delivery import DeliverMessage, DeliverMessages
from tidings.services.receipts import ApplyReceipt, ReceiptPayload
from tidings.services.webhook_dispatch import SendWebhook
from tidings.store.accounts import get_account, set_status_url
from tidings.store.tables import accounts, jobs, message_events, message_parts, messages

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
        "content": Text(text),
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


async def parts(runtime: Runtime, message_uuid: str) -> list[RowMapping]:
    async with runtime.database.engine.connect() as conn:
        query = (
            select(message_parts)
            .where(message_parts.c.message_uuid == message_uuid)
            .order_by(message_parts.c.part_index)
        )
        return list((await conn.execute(query)).mappings().all())


async def jobs_of(runtime: Runtime, kind: str, key: str) -> list[RowMapping]:
    """The jobs of a kind whose payload mentions `key` (a message uuid or a provider reference)."""
    async with runtime.database.engine.connect() as conn:
        query = select(jobs).where(jobs.c.kind == kind).order_by(jobs.c.id)
        rows = (await conn.execute(query)).mappings().all()
        return [r for r in rows if key in r["payload"].values()]


async def until_jobs_done(runtime: Runtime, kind: str, key: str) -> None:
    """Until every job of a kind mentioning `key` is done: deleted, none left pending, leased or
    dead. Callers wait on it only once those jobs exist."""

    async def all_done() -> bool:
        return not await jobs_of(runtime, kind, key)

    await until(all_done)


def receipt(ref: str, status: Status, **fields: Any) -> Receipt:
    return Receipt(
        connector="simulator", provider_ref=ref, status=status, occurred_at=datetime.now(UTC), **fields
    )


def simulator_ref(message_uuid: str, part: int = 0) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"tidings-simulator:{message_uuid}:{part}").hex


async def test_an_accepted_message_is_submitted_then_delivered_part_by_part(
    runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    sent = sms(account, TEXT_161, client_ref="order-7", ttl=3600, webhook_url=f"{receiver.url}/status")
    await submit(runtime, account, sent)

    submitted, delivered = await asyncio.to_thread(receiver.wait_for, 2)
    row = await until_status(runtime, sent.uuid, "delivered")
    assert row["connector"] == "simulator"
    assert row["segments"] == 2
    assert (Decimal(row["price"]), row["currency"]) == (Decimal("0.014"), "EUR")
    assert row["error_code"] is None
    # One part per segment, each with the carrier's reference and its own receipt.
    assert [
        (p["part_index"], p["provider_ref"], p["status"], p["network_code"])
        for p in await parts(runtime, sent.uuid)
    ] == [
        (0, simulator_ref(sent.uuid, 0), "delivered", "99999"),
        (1, simulator_ref(sent.uuid, 1), "delivered", "99999"),
    ]

    recorded = await events(runtime, sent.uuid)
    assert [(e["status"], e["webhook_url"], e["error_code"]) for e in recorded] == [
        ("submitted", f"{receiver.url}/status", None),
        ("delivered", f"{receiver.url}/status", None),
    ]
    # The simulated handset reports delivery after the configured delay.
    gap = recorded[1]["occurred_at"] - recorded[0]["occurred_at"]
    assert gap >= timedelta(seconds=0.15)

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

    await until_jobs_done(runtime, DeliverMessages.name, sent.uuid)
    for part in (0, 1):
        await until_jobs_done(runtime, ApplyReceipt.name, simulator_ref(sent.uuid, part))
    await until_jobs_done(runtime, SendWebhook.name, sent.uuid)


async def test_a_message_is_delivered_only_when_every_part_is(
    runtime: Runtime, account: NewAccountCredentials
) -> None:
    # 9905: the simulated handset never answers, so the test reports for it.
    sent = sms(account, TEXT_161, to="447700909905")
    await submit(runtime, account, sent)
    await until_status(runtime, sent.uuid, "submitted")

    await runtime.ingress.report(receipt(simulator_ref(sent.uuid, 1), Status.DELIVERED))
    assert (await message(runtime, sent.uuid))["status"] == "submitted"
    assert [p["status"] for p in await parts(runtime, sent.uuid)] == ["submitted", "delivered"]

    await runtime.ingress.report(receipt(simulator_ref(sent.uuid, 0), Status.DELIVERED))
    assert (await message(runtime, sent.uuid))["status"] == "delivered"
    assert [e["status"] for e in await events(runtime, sent.uuid)] == ["submitted", "delivered"]


async def test_one_failed_part_fails_the_message_with_that_parts_error(
    runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    sent = sms(account, TEXT_161, to="447700909905", webhook_url=f"{receiver.url}/status")
    await submit(runtime, account, sent)
    await until_status(runtime, sent.uuid, "submitted")

    await runtime.ingress.report(receipt(simulator_ref(sent.uuid, 0), Status.DELIVERED))
    absent = DeliveryError.of(DeliveryErrorCode.ABSENT_SUBSCRIBER_TEMPORARY)
    await runtime.ingress.report(receipt(simulator_ref(sent.uuid, 1), Status.UNDELIVERABLE, error=absent))
    row = await message(runtime, sent.uuid)
    assert (row["status"], row["error_code"]) == ("undeliverable", 1180)
    # A later delivery of the failed part changes nothing: the message's status is final.
    await runtime.ingress.report(receipt(simulator_ref(sent.uuid, 1), Status.DELIVERED))
    assert (await message(runtime, sent.uuid))["status"] == "undeliverable"
    _, failed = await asyncio.to_thread(receiver.wait_for, 2)
    assert failed.json()["status"] == "undeliverable"
    assert failed.json()["error"]["title"] == "1180"


async def test_an_app_channel_reports_delivered_then_read(
    runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    sent = sms(
        account,
        "hola",
        channel=Channel.WHATSAPP,
        sender="447700900001",
        webhook_url=f"{receiver.url}/status",
    )
    await submit(runtime, account, sent)
    received = await asyncio.to_thread(receiver.wait_for, 3)
    assert [r.json()["status"] for r in received] == ["submitted", "delivered", "read"]
    assert all(r.json()["channel"] == "whatsapp" for r in received)
    assert all("sms" not in r.json() and "destination" not in r.json() for r in received)
    assert (await message(runtime, sent.uuid))["status"] == "read"


async def test_a_message_whose_ttl_ran_out_before_delivery_is_rejected_with_1360(
    runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    old = datetime.now(UTC) - timedelta(seconds=120)
    sent = sms(account, ttl=60, created_at=old, client_ref="late", webhook_url=f"{receiver.url}/status")
    await submit(runtime, account, sent)

    (webhook,) = await asyncio.to_thread(receiver.wait_for, 1)
    row = await until_status(runtime, sent.uuid, "rejected")
    assert row["error_code"] == 1360
    assert row["connector"] is None  # never handed to the carrier
    assert await parts(runtime, sent.uuid) == []
    (event,) = await events(runtime, sent.uuid)
    assert (event["status"], event["error_code"]) == ("rejected", 1360)

    body = webhook.json()
    assert body["timestamp"].endswith("Z")
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
    assert "usage" not in body  # nothing was sent, nothing is charged


async def test_receipts_never_move_a_status_backwards_nor_repeat_it(
    runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    sent = sms(account, webhook_url=f"{receiver.url}/status")
    await submit(runtime, account, sent)
    await until_status(runtime, sent.uuid, "delivered")
    ref = simulator_ref(sent.uuid)

    await runtime.ingress.report(receipt(ref, Status.SUBMITTED))  # backwards
    await runtime.ingress.report(receipt(ref, Status.DELIVERED, network_code="23410"))  # a duplicate
    assert (await message(runtime, sent.uuid))["status"] == "delivered"
    assert [e["status"] for e in await events(runtime, sent.uuid)] == ["submitted", "delivered"]
    assert (await parts(runtime, sent.uuid))[0]["network_code"] == "99999"

    # A receipt that does move the message forward is still applied.
    await runtime.ingress.report(receipt(ref, Status.READ))
    assert [e["status"] for e in await events(runtime, sent.uuid)] == ["submitted", "delivered", "read"]
    received = await asyncio.to_thread(receiver.wait_for, 3)
    assert [r.json()["status"] for r in received] == ["submitted", "delivered", "read"]


async def test_a_receipt_that_overtakes_its_submit_waits_for_its_part(
    runtime: Runtime, account: NewAccountCredentials
) -> None:
    sent = sms(account, to="447700909905")
    ref = simulator_ref(sent.uuid)
    await runtime.ingress.report(receipt(ref, Status.DELIVERED))  # before the message even exists
    (waiting,) = await jobs_of(runtime, ApplyReceipt.name, ref)
    assert waiting["state"] in ("pending", "leased")

    await submit(runtime, account, sent)
    await until_status(runtime, sent.uuid, "delivered")
    await until_jobs_done(runtime, ApplyReceipt.name, ref)


async def test_receipts_waiting_for_their_part_apply_in_the_order_they_came(
    runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    """A `read` queued behind a `delivered` that waits for its part does not overtake it, however
    their retries fall: overtaking would leave the message never reported delivered."""
    sent = sms(
        account,
        channel=Channel.WHATSAPP,
        sender="447700900001",
        to="447700909905",  # the simulator itself reports nothing after `submitted`
        webhook_url=f"{receiver.url}/status",
    )
    ref = simulator_ref(sent.uuid)
    # The `delivered` came first and, its part unknown, waits for its next retry, a second off.
    async with runtime.database.begin() as conn:
        delivered = ReceiptPayload.of(receipt(ref, Status.DELIVERED))
        later = datetime.now(UTC) + timedelta(seconds=1)
        await enqueue(conn, [ApplyReceipt.new(delivered, run_at=later)], now=datetime.now(UTC))
    await runtime.ingress.report(receipt(ref, Status.READ))  # its part unknown too: queued
    await submit(runtime, account, sent)

    await until_jobs_done(runtime, ApplyReceipt.name, ref)
    assert [e["status"] for e in await events(runtime, sent.uuid)] == ["submitted", "delivered", "read"]
    received = await asyncio.to_thread(receiver.wait_for, 3)
    assert [r.json()["status"] for r in received] == ["submitted", "delivered", "read"]


async def test_a_receipt_for_a_reference_nobody_has_is_retried_not_applied(runtime: Runtime) -> None:
    """Its job waits for the part (the worker buries it once its kind's attempts are spent)."""
    ghost = Receipt("simulator", uuid.uuid4().hex, Status.DELIVERED, datetime.now(UTC))
    job = Job(id=0, kind=ApplyReceipt.name, payload=ReceiptPayload.of(ghost), attempts=1)
    kind = ApplyReceipt(runtime._receipts)
    plan = await kind.plan(job, await kind.perform(job))
    assert plan == Plan(Retry("no part carries this provider reference yet"))
    assert ApplyReceipt.retry.max_attempts > 1


async def test_receipts_are_scoped_to_the_account_they_name(
    runtime: Runtime, account: NewAccountCredentials
) -> None:
    sent = sms(account, to="447700909905")
    await submit(runtime, account, sent)
    await until_status(runtime, sent.uuid, "submitted")
    ref = simulator_ref(sent.uuid)

    applier = runtime._receipts
    assert await applier.address(receipt(ref, Status.DELIVERED, account_id="someone-else")) is None
    theirs = await applier.address(receipt(ref, Status.DELIVERED, account_id=account.api_key))
    assert theirs is not None and theirs.message.uuid == sent.uuid
    await runtime.writer.write_background(applier.writes(theirs))
    assert (await message(runtime, sent.uuid))["status"] == "delivered"


async def test_a_repeated_delivery_job_does_not_submit_twice(
    runtime: Runtime, account: NewAccountCredentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    original = SimulatorConnector.submit

    async def counting(self: SimulatorConnector, message: Message) -> Submission:
        calls.append(message.uuid)
        return await original(self, message)

    monkeypatch.setattr(SimulatorConnector, "submit", counting)
    sent = sms(account)
    await submit(runtime, account, sent)
    await until_status(runtime, sent.uuid, "delivered")

    async with runtime.database.begin() as conn:
        await enqueue(
            conn, [DeliverMessages.new(DeliverMessage(message_uuid=sent.uuid))], now=datetime.now(UTC)
        )
    assert runtime.worker is not None
    runtime.worker.wake()
    await until_jobs_done(runtime, DeliverMessages.name, sent.uuid)
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
    assert await jobs_of(runtime, SendWebhook.name, sent.uuid) == []


async def test_a_delivery_job_that_is_buried_rejects_the_message_with_1331(
    runtime: Runtime,
    account: NewAccountCredentials,
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts = 0

    async def unavailable(self: SimulatorConnector, message: Message) -> Submission:
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
    (deliver,) = await jobs_of(runtime, DeliverMessages.name, sent.uuid)
    assert (deliver["state"], deliver["attempts"]) == ("dead", runtime.settings.job_max_attempts)
    body = webhook.json()
    assert body["status"] == "rejected"
    assert body["error"]["type"] == f"{ERRORS}#1331"
    assert body["error"]["title"] == "1331"
    assert body["error"]["detail"] == "carrier link down"


async def test_a_submit_the_carrier_refuses_rejects_the_message_at_once_and_refunds_it(
    runtime: Runtime,
    account: NewAccountCredentials,
    receiver: WebhookReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 9901: the simulated carrier refuses the number outright (1240, illegal number).
    sent = sms(account, to="447700909901", webhook_url=f"{receiver.url}/status")
    with caplog.at_level(logging.WARNING, logger="tidings"):
        await submit(runtime, account, sent)
        (webhook,) = await asyncio.to_thread(receiver.wait_for, 1)
        assert webhook.json()["error"]["title"] == "1240"
        assert "usage" not in webhook.json()
        assert (await message(runtime, sent.uuid))["error_code"] == 1240
        await until_jobs_done(runtime, DeliverMessages.name, sent.uuid)
    # Done on its first attempt: a failed one is logged before its retry.
    assert not [
        r for r in caplog.records if DeliverMessages.name in r.getMessage() and "failed" in r.getMessage()
    ]
    row = await until_refunded(runtime, sent.uuid)
    assert Decimal(row["price"]) == 0
    async with runtime.database.engine.connect() as conn:
        balance = (
            await conn.execute(select(accounts.c.balance).where(accounts.c.api_key == account.api_key))
        ).scalar_one()
    assert Decimal(balance) == 0  # charged 0.0070 at accept, given back on the refusal


async def until_refunded(runtime: Runtime, message_uuid: str) -> RowMapping:
    async def refunded() -> bool:
        return Decimal((await message(runtime, message_uuid))["price"]) == 0

    await until(refunded)
    return await message(runtime, message_uuid)
