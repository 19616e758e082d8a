"""Webhook delivery end to end, through a running Runtime (worker, simulator, `send_webhook` jobs)
and real HTTP to a local receiver: retries until a 2xx with every attempt recorded, the same bytes
signed afresh each time, one message's webhooks in order, redirects and refused connections as
failed attempts, and a webhook whose account is gone buried without being sent."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import jwt
import pytest
from sqlalchemy import delete

from tests.receiver import WebhookReceiver
from tests.webhooks.support import (
    attempts_for,
    event_ids,
    queue,
    submit,
    text_message,
    until,
    until_webhooks_settled,
    webhook_jobs,
)
from tidings.auth.webhook_signing import verify_webhook
from tidings.config import Settings
from tidings.domain.message import Channel, WebhookVersion
from tidings.queue.jobs import DEAD
from tidings.runtime import Runtime
from tidings.services.accounts import NewAccountCredentials, create_account
from tidings.store.tables import accounts
from tidings.webhooks.delivery import USER_AGENT, WebhookSender
from tidings.webhooks.ssrf import parse_networks

LOOPBACK = parse_networks(["127.0.0.0/8", "::1/128"])


def closed_port() -> int:
    """A local port nothing listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_failing_webhook_is_retried_until_2xx_and_every_attempt_is_recorded(
    runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    receiver.responses = [500, 502]
    sent = text_message(account.api_key, webhook_url=f"{receiver.url}/status")
    await submit(runtime, sent)

    received = await asyncio.to_thread(receiver.wait_for, 2)
    assert [r.json()["status"] for r in received] == ["submitted", "delivered"]
    assert await until_webhooks_settled(runtime, sent.uuid) == []  # both done, none dead

    ids = await event_ids(runtime, sent.uuid)
    recorded = await attempts_for(runtime, sent.uuid)
    assert [(a["event_id"], a["status_code"], a["error"]) for a in recorded] == [
        (ids["submitted"], 500, "HTTP 500"),
        (ids["submitted"], 502, "HTTP 502"),
        (ids["submitted"], 200, None),
        (ids["delivered"], 200, None),
    ]
    submitted_job, delivered_job = recorded[0]["job_id"], recorded[-1]["job_id"]
    assert submitted_job != delivered_job
    assert [a["job_id"] for a in recorded] == [submitted_job] * 3 + [delivered_job]
    for attempt in recorded:
        assert attempt["url"] == f"{receiver.url}/status"
        assert attempt["account_id"] == account.api_key
        assert attempt["message_uuid"] == sent.uuid
        assert Decimal(attempt["latency_ms"]) > 0
    # The receiver saw exactly the attempts that were recorded.
    assert [h.answered for h in receiver.attempts] == [500, 502, 200, 200]
    # Backoff between attempts (base 0.05 s, equal jitter): at least 0.025 s, then at least 0.05 s.
    gaps = [b["attempted_at"] - a["attempted_at"] for a, b in itertools.pairwise(recorded[:3])]
    assert gaps[0] >= timedelta(seconds=0.025) and gaps[1] >= timedelta(seconds=0.05)


async def test_every_attempt_sends_the_same_bytes_with_a_fresh_token(
    runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    receiver.responses = [500, 503] * 50  # until told otherwise
    sent = text_message(
        account.api_key, client_ref="same-bytes ☕", webhook_url=f"{receiver.url}/hooks/status"
    )
    await submit(runtime, sent)
    await asyncio.to_thread(receiver.wait_for, 2, accepted_only=False)
    # Still failing, so still queued (a done job is deleted): the first event's job, `submitted`.
    (stored, *_) = await webhook_jobs(runtime, sent.uuid)
    assert stored["payload"]["event_id"] == (await event_ids(runtime, sent.uuid))["submitted"]
    with receiver._lock:  # the handler reads the queue under this lock
        receiver.responses.clear()
    received = await asyncio.to_thread(receiver.wait_for, 2)  # `submitted` at last, `delivered`
    assert [r.json()["status"] for r in received] == ["submitted", "delivered"]

    tries = [h for h in receiver.attempts if h.json()["status"] == "submitted"]
    assert len(tries) >= 3
    assert [h.answered for h in tries] == [*([500, 503] * 50)[: len(tries) - 1], 200]
    assert len({h.body for h in tries}) == 1
    assert tries[0].body == stored["payload"]["body"].encode()
    assert "same-bytes ☕".encode() in tries[0].body

    claims = []
    for hit in tries:
        assert verify_webhook(hit.bearer, hit.body, account.signature_secret)
        claims.append(jwt.decode(hit.bearer, account.signature_secret, algorithms=["HS256"]))
        assert hit.headers["content-type"] == "application/json"
        assert hit.headers["user-agent"] == USER_AGENT
        assert hit.path == "/hooks/status"
    assert {c["payload_hash"] for c in claims} == {hashlib.sha256(tries[0].body).hexdigest()}
    assert len({c["jti"] for c in claims}) == len(tries)  # a fresh token each attempt
    assert all(c["api_key"] == account.api_key and c["iss"] == "Vonage" for c in claims)
    assert all("application_id" not in c for c in claims)  # an account-level send
    # A token signed for these bytes does not verify other bytes.
    assert not verify_webhook(tries[0].bearer, received[-1].body, account.signature_secret)


async def test_one_message_s_webhooks_go_out_in_order_while_the_first_keeps_failing(
    runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    receiver.responses = [500] * 100  # until told otherwise
    sent = text_message(account.api_key, webhook_url=f"{receiver.url}/status")
    await submit(runtime, sent)

    async def delivered_is_queued() -> bool:
        return len(await webhook_jobs(runtime, sent.uuid)) == 2

    await until(delivered_is_queued, what="the `delivered` webhook queued")
    # The `delivered` webhook is due now; the next attempts are still `submitted`'s, not it.
    seen = len(receiver.attempts)
    hits = await asyncio.to_thread(receiver.wait_for, seen + 2, accepted_only=False)
    assert [h.json()["status"] for h in hits] == ["submitted"] * len(hits)
    first, second = await webhook_jobs(runtime, sent.uuid)
    assert first["state"] in ("pending", "leased") and second["state"] == "pending"

    with receiver._lock:  # the handler reads the queue under this lock
        receiver.responses.clear()
    received = await asyncio.to_thread(receiver.wait_for, 2)
    assert [r.json()["status"] for r in received] == ["submitted", "delivered"]
    await until_webhooks_settled(runtime, sent.uuid)

    statuses = [h.json()["status"] for h in receiver.attempts]
    failures = statuses.index("delivered") - 1
    assert failures >= 2
    assert statuses == ["submitted"] * (failures + 1) + ["delivered"]
    ids = await event_ids(runtime, sent.uuid)
    recorded = await attempts_for(runtime, sent.uuid)
    assert [a["event_id"] for a in recorded] == [ids["submitted"]] * (failures + 1) + [ids["delivered"]]


async def test_a_slow_receiver_holds_up_only_its_own_webhooks(
    settings: Settings, receiver: WebhookReceiver
) -> None:
    runtime = Runtime(settings.model_copy(update={"webhook_max_in_flight_per_endpoint": 2}))
    await runtime.start()
    try:
        account = await create_account(runtime.database, runtime.box, name="slow and quick")
        receiver.delay_seconds = 1.0
        slow = [text_message(account.api_key, webhook_url=f"{receiver.url}/status") for _ in range(6)]
        for message in slow:
            await submit(runtime, message)
        await asyncio.to_thread(receiver.wait_for, 2, accepted_only=False)  # the slow ones are in
        with WebhookReceiver() as quick:
            sent = text_message(account.api_key, webhook_url=f"{quick.url}/status")
            await submit(runtime, sent)
            # Both of the quick receiver's webhooks arrive while the slow one is still answering.
            await asyncio.to_thread(quick.wait_for, 2)
            assert len(receiver.received) < 2 * len(slow)
        received = await asyncio.to_thread(receiver.wait_for, 2 * len(slow), 30)
        assert len(received) == 2 * len(slow)
        # Six messages' webhooks, one at a time per message, yet never more than two at once.
        assert receiver.most_in_flight == 2
        for message in slow:
            await until_webhooks_settled(runtime, message.uuid)
            assert [a["status_code"] for a in await attempts_for(runtime, message.uuid)] == [200, 200]
    finally:
        await runtime.stop()


async def test_a_redirect_is_a_failed_attempt_and_is_not_followed(
    runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    receiver.responses = [(302, {"location": f"{receiver.url}/elsewhere"})]
    sent = text_message(account.api_key, webhook_url=f"{receiver.url}/status")
    await submit(runtime, sent)
    hits = await asyncio.to_thread(receiver.wait_for, 3, accepted_only=False)
    await until_webhooks_settled(runtime, sent.uuid)

    assert [(h.path, h.answered) for h in hits] == [("/status", 302), ("/status", 200), ("/status", 200)]
    ids = await event_ids(runtime, sent.uuid)
    recorded = await attempts_for(runtime, sent.uuid)
    assert [(a["event_id"], a["status_code"], a["error"]) for a in recorded] == [
        (ids["submitted"], 302, "HTTP 302"),
        (ids["submitted"], 200, None),
        (ids["delivered"], 200, None),
    ]


async def test_the_sender_reports_a_redirect_without_following_it(receiver: WebhookReceiver) -> None:
    receiver.responses = [(307, {"location": f"{receiver.url}/elsewhere"})]
    sender = WebhookSender(timeout_seconds=2, allowed_networks=LOOPBACK)
    try:
        result = await sender.send(f"{receiver.url}/status", b"{}", token="t")
    finally:
        await sender.close()
    assert (result.status_code, result.delivered, result.error) == (307, False, "HTTP 307")
    assert [h.path for h in receiver.attempts] == ["/status"]


async def test_the_sender_reports_a_refused_connection() -> None:
    sender = WebhookSender(timeout_seconds=2, allowed_networks=LOOPBACK)
    port = closed_port()
    try:
        result = await sender.send(f"http://127.0.0.1:{port}/status", b"{}", token="t")
    finally:
        await sender.close()
    assert result.status_code is None and not result.delivered
    assert result.error is not None
    assert result.error.startswith(f"ConnectError: cannot connect to 127.0.0.1:{port} (127.0.0.1: ")
    assert "Connection refused" in result.error
    assert result.latency_ms >= 0


@pytest.fixture
async def two_try_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """Webhooks get two attempts each."""
    runtime = Runtime(settings.model_copy(update={"webhook_max_attempts": 2}))
    await runtime.start()
    yield runtime
    await runtime.stop()


async def test_a_refused_connection_is_recorded_and_the_webhook_buried_after_its_attempts(
    two_try_runtime: Runtime,
) -> None:
    account = await create_account(two_try_runtime.database, two_try_runtime.box, name="refused")
    port = closed_port()
    url = f"http://127.0.0.1:{port}/status"
    refused = f"ConnectError: cannot connect to 127.0.0.1:{port} (127.0.0.1: "
    sent = text_message(account.api_key, webhook_url=url)
    await submit(two_try_runtime, sent)

    # `submitted` dies after its two attempts; then `delivered`, held behind it, gets its own two.
    submitted_job, delivered_job = await until_webhooks_settled(two_try_runtime, sent.uuid, dead=2)
    for job in (submitted_job, delivered_job):
        assert (job["state"], job["attempts"]) == (DEAD, 2)
        assert job["last_error"].startswith(refused)
    ids = await event_ids(two_try_runtime, sent.uuid)
    recorded = await attempts_for(two_try_runtime, sent.uuid)
    assert [a["event_id"] for a in recorded] == [ids["submitted"]] * 2 + [ids["delivered"]] * 2
    for attempt in recorded:
        assert attempt["status_code"] is None
        assert attempt["error"].startswith(refused)
        assert attempt["url"] == url


async def test_a_webhook_for_an_account_that_is_gone_is_buried_unsent(
    runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    leaving = await create_account(runtime.database, runtime.box, name="leaving")
    async with runtime.database.begin() as conn:
        await conn.execute(delete(accounts).where(accounts.c.api_key == leaving.api_key))
    gone_message, live_message = str(uuid.uuid4()), str(uuid.uuid4())
    await queue(
        runtime,
        event_id=str(uuid.uuid4()),
        account_id=leaving.api_key,
        application_id=None,
        message_uuid=gone_message,
        url=f"{receiver.url}/gone",
        body=b'{"status":"delivered"}',
    )
    # Queued after it, for an account that is still there: it arrives, the first never does.
    await queue(
        runtime,
        event_id=str(uuid.uuid4()),
        account_id=account.api_key,
        application_id=None,
        message_uuid=live_message,
        url=f"{receiver.url}/live",
        body=b'{"status":"submitted"}',
    )

    (live,) = await asyncio.to_thread(receiver.wait_for, 1)
    assert (live.path, live.body) == ("/live", b'{"status":"submitted"}')
    (job,) = await until_webhooks_settled(runtime, gone_message, dead=1)
    assert (job["state"], job["attempts"], job["last_error"]) == (DEAD, 1, "the account no longer exists")
    assert job["finished_at"] is not None
    assert [h.path for h in receiver.attempts] == ["/live"]
    assert await attempts_for(runtime, gone_message) == []
    assert await until_webhooks_settled(runtime, live_message) == []  # done
    assert [a["status_code"] for a in await attempts_for(runtime, live_message)] == [200]


# --- what each channel's status webhooks carry, as the running system builds them -------------

# channel, to, from
CHANNEL_SENDS = [
    (Channel.SMS, "447700900000", "Acme"),
    (Channel.MMS, "14155550100", "14155550101"),
    (Channel.WHATSAPP, "447700900000", "447700900001"),
    (Channel.MESSENGER, "0123456789012345", "9876543210"),
    (Channel.VIBER, "447700900000", "654321"),
    (Channel.RCS, "447700900000", "TidingsAgent"),
]


async def test_status_webhooks_of_every_channel(
    runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    sent = {}
    for channel, to, sender in CHANNEL_SENDS:
        message = text_message(
            account.api_key,
            channel=channel,
            to=to,
            sender=sender,
            client_ref=f"ref-{channel.value}",
            webhook_url=f"{receiver.url}/{channel.value}",
        )
        await submit(runtime, message)
        sent[channel] = message
    # SMS and MMS: submitted, delivered. The app platforms report reads too.
    await asyncio.to_thread(receiver.wait_for, 2 * 2 + 4 * 3, 30.0)

    by_channel: dict[str, list[dict[str, object]]] = {}
    for hit in receiver.received:
        by_channel.setdefault(hit.path.lstrip("/"), []).append(hit.json())
    price = {"currency": "EUR", "price": "0.007"}  # the default price, one part each
    for channel, to, sender in CHANNEL_SENDS:
        bodies = by_channel[channel.value]
        common = {
            "message_uuid": sent[channel].uuid,
            "to": to,
            "from": sender,
            "channel": channel.value,
            "client_ref": f"ref-{channel.value}",
            "usage": price,
        }
        for body in bodies:
            body.pop("timestamp")
        if channel is Channel.SMS:
            assert bodies == [
                common | {"status": "submitted", "sms": {"count_total": "1"}},
                common
                | {
                    "status": "delivered",
                    "destination": {"network_code": "99999"},
                    "sms": {"count_total": "1"},
                },
            ]
        elif channel is Channel.MMS:
            assert bodies == [
                common | {"status": "submitted"},
                common | {"status": "delivered", "destination": {"network_code": "99999"}},
            ]
        else:
            assert bodies == [
                common | {"status": "submitted"},
                common | {"status": "delivered"},
                common | {"status": "read"},
            ], channel


async def test_a_message_asking_for_v01_gets_nested_status_webhooks(
    runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    sent = text_message(
        account.api_key,
        channel=Channel.VIBER,
        to="447700909904",  # the simulated handset delivers but never reads
        sender="654321",
        webhook_url=f"{receiver.url}/status",
        webhook_version=WebhookVersion.V0_1,
    )
    await submit(runtime, sent)
    received = await asyncio.to_thread(receiver.wait_for, 2)
    for hit, status in zip(received, ["submitted", "delivered"], strict=True):
        body = hit.json()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body.pop("timestamp"))
        assert body == {
            "message_uuid": sent.uuid,
            "to": {"type": "viber_service_msg", "number": "447700909904"},
            "from": {"type": "viber_service_msg", "id": "654321"},
            "status": status,
            "usage": {"currency": "EUR", "price": "0.007"},
        }
