"""Webhook delivery end to end: retries until a 2xx, every attempt recorded, the same bytes signed
afresh each time, one message's webhooks in order, redirects treated as failures."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from decimal import Decimal

import jwt
import pytest
from sqlalchemy import select
from sqlalchemy.engine import RowMapping

from tests.receiver import WebhookReceiver
from tests.services.test_delivery import add_jobs, jobs_of, sms, submit, until
from tidings.auth.webhook_signing import verify_webhook
from tidings.config import Settings
from tidings.queue.jobs import DEAD, DONE, NewJob
from tidings.runtime import Runtime
from tidings.services.accounts import NewAccountCredentials, create_account
from tidings.services.job_kinds import JobKind
from tidings.store.tables import message_events, webhook_attempts
from tidings.webhooks.delivery import USER_AGENT, WebhookSender
from tidings.webhooks.ssrf import parse_networks

LOOPBACK = parse_networks(["127.0.0.0/8", "::1/128"])


@pytest.fixture
def recorder() -> Iterator[WebhookReceiver]:
    """Every request is recorded in `attempts`, whatever it was answered."""
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
async def instant_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """The simulator reports delivery at once, while the `submitted` webhook may still be failing."""
    runtime = Runtime(settings.model_copy(update={"simulator_delivery_delay_seconds": 0.0}))
    await runtime.start()
    yield runtime
    await runtime.stop()


async def attempts_for(runtime: Runtime, message_uuid: str) -> list[RowMapping]:
    async with runtime.database.engine.connect() as conn:
        query = (
            select(webhook_attempts)
            .where(webhook_attempts.c.message_uuid == message_uuid)
            .order_by(webhook_attempts.c.attempted_at, webhook_attempts.c.id)
        )
        return list((await conn.execute(query)).mappings().all())


async def event_ids(runtime: Runtime, message_uuid: str) -> dict[str, str]:
    """status -> event id"""
    async with runtime.database.engine.connect() as conn:
        query = select(message_events.c.status, message_events.c.id).where(
            message_events.c.message_uuid == message_uuid
        )
        return {row.status: row.id for row in await conn.execute(query)}


async def test_a_failing_webhook_is_retried_until_2xx_and_every_attempt_is_recorded(
    runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    receiver.responses = [500, 500]
    sent = sms(account, webhook_url=f"{receiver.url}/status")
    await submit(runtime, account, sent)

    received = await asyncio.to_thread(receiver.wait_for, 2)
    assert [r.json()["status"] for r in received] == ["submitted", "delivered"]
    await until_webhooks_settled(runtime, sent.uuid, 2)

    ids = await event_ids(runtime, sent.uuid)
    recorded = await attempts_for(runtime, sent.uuid)
    submitted = [a for a in recorded if a["event_id"] == ids["submitted"]]
    delivered = [a for a in recorded if a["event_id"] == ids["delivered"]]
    assert [(a["status_code"], a["error"]) for a in submitted] == [
        (500, "HTTP 500"),
        (500, "HTTP 500"),
        (200, None),
    ]
    assert [(a["status_code"], a["error"]) for a in delivered] == [(200, None)]
    for attempt in recorded:
        assert attempt["url"] == f"{receiver.url}/status"
        assert attempt["account_id"] == account.api_key
        assert Decimal(attempt["latency_ms"]) > 0
    assert len({a["job_id"] for a in submitted}) == 1  # one job, three attempts
    # Backoff between attempts: at least half of 0.05 s, then half of 0.1 s (equal jitter).
    gaps = [b["attempted_at"] - a["attempted_at"] for a, b in itertools.pairwise(submitted)]
    assert gaps[0] >= timedelta(seconds=0.02) and gaps[1] >= timedelta(seconds=0.045)

    (job, _) = await jobs_of(runtime, JobKind.SEND_WEBHOOK, sent.uuid)
    assert (job["state"], job["attempts"]) == (DONE, 3)


async def until_webhooks_settled(runtime: Runtime, message_uuid: str, count: int) -> None:
    async def settled() -> bool:
        found = await jobs_of(runtime, JobKind.SEND_WEBHOOK, message_uuid)
        return len(found) == count and all(j["state"] in (DONE, DEAD) for j in found)

    await until(settled)


async def test_every_attempt_sends_the_same_bytes_with_a_fresh_token(
    runtime: Runtime, account: NewAccountCredentials, recorder: WebhookReceiver
) -> None:
    recorder.responses = [500, 503]
    sent = sms(account, client_ref="same-bytes", webhook_url=f"{recorder.url}/hooks/status")
    await submit(runtime, account, sent)
    hits = await asyncio.to_thread(
        recorder.wait_for, 4, accepted_only=False
    )  # three tries of `submitted`, then `delivered`

    tries = [h for h in hits if h.json()["status"] == "submitted"]
    assert [h.answered for h in tries] == [500, 503, 200]
    assert len({h.body for h in tries}) == 1
    webhook_jobs = await jobs_of(runtime, JobKind.SEND_WEBHOOK, sent.uuid)
    stored = webhook_jobs[0]  # the first event's job: `submitted`
    assert stored["payload"]["event_id"] == (await event_ids(runtime, sent.uuid))["submitted"]
    assert tries[0].body == stored["payload"]["body"].encode()

    claims = []
    for hit in tries:
        token = hit.headers["authorization"].removeprefix("Bearer ")
        assert verify_webhook(token, hit.body, account.signature_secret)
        claims.append(jwt.decode(token, account.signature_secret, algorithms=["HS256"]))
        assert hit.headers["content-type"] == "application/json"
        assert hit.headers["user-agent"] == USER_AGENT
        assert hit.path == "/hooks/status"
    assert {c["payload_hash"] for c in claims} == {hashlib.sha256(tries[0].body).hexdigest()}
    assert len({c["jti"] for c in claims}) == 3
    assert all(c["api_key"] == account.api_key and c["iss"] == "Vonage" for c in claims)


async def test_submitted_is_delivered_before_delivered_even_when_it_fails_first(
    instant_runtime: Runtime, receiver: WebhookReceiver
) -> None:
    account = await create_account(instant_runtime.database, instant_runtime.box, name="ordered")
    receiver.responses = [500, 500]
    sent = sms(account, webhook_url=f"{receiver.url}/status")
    await submit(instant_runtime, account, sent)

    received = await asyncio.to_thread(receiver.wait_for, 2)
    assert [r.json()["status"] for r in received] == ["submitted", "delivered"]
    await until_webhooks_settled(instant_runtime, sent.uuid, 2)

    ids = await event_ids(instant_runtime, sent.uuid)
    recorded = await attempts_for(instant_runtime, sent.uuid)
    assert [a["event_id"] for a in recorded] == [ids["submitted"]] * 3 + [ids["delivered"]]
    # The `delivered` webhook was ready long before `submitted` got through: it waited its turn.
    async with instant_runtime.database.engine.connect() as conn:
        query = select(message_events.c.occurred_at).where(message_events.c.id == ids["delivered"])
        delivered_at = (await conn.execute(query)).scalar_one()
    assert delivered_at < recorded[2]["attempted_at"]


async def test_a_redirect_is_a_failed_attempt_and_is_not_followed(
    runtime: Runtime, account: NewAccountCredentials, recorder: WebhookReceiver
) -> None:
    recorder.responses = [(302, {"location": f"{recorder.url}/elsewhere"})]
    sent = sms(account, webhook_url=f"{recorder.url}/status")
    await submit(runtime, account, sent)
    hits = await asyncio.to_thread(recorder.wait_for, 3, accepted_only=False)
    await until_webhooks_settled(runtime, sent.uuid, 2)

    assert [(h.path, h.answered) for h in hits] == [("/status", 302), ("/status", 200), ("/status", 200)]
    ids = await event_ids(runtime, sent.uuid)
    recorded = await attempts_for(runtime, sent.uuid)
    assert [(a["event_id"], a["status_code"], a["error"]) for a in recorded] == [
        (ids["submitted"], 302, "HTTP 302"),
        (ids["submitted"], 200, None),
        (ids["delivered"], 200, None),
    ]


async def test_the_sender_reports_a_redirect_without_following_it(recorder: WebhookReceiver) -> None:
    recorder.responses = [(307, {"location": f"{recorder.url}/elsewhere"})]
    sender = WebhookSender(timeout_seconds=2, allowed_networks=LOOPBACK)
    try:
        result = await sender.send(f"{recorder.url}/status", b"{}", token="t")
    finally:
        await sender.close()
    assert (result.status_code, result.delivered, result.error) == (307, False, "HTTP 307")
    assert [h.path for h in recorder.attempts] == ["/status"]


async def test_the_sender_reports_a_refused_connection() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = WebhookSender(timeout_seconds=2, allowed_networks=LOOPBACK)
    try:
        result = await sender.send(f"http://127.0.0.1:{port}/status", b"{}", token="t")
    finally:
        await sender.close()
    assert result.status_code is None and not result.delivered
    assert result.error is not None and result.error.startswith("ConnectError")
    assert result.latency_ms >= 0


async def test_a_webhook_for_an_account_that_is_gone_is_buried_unsent(
    runtime: Runtime, recorder: WebhookReceiver
) -> None:
    ghost = "gone0001"
    await add_jobs(
        runtime,
        NewJob(
            JobKind.SEND_WEBHOOK.value,
            {
                "event_id": "00000000-0000-4000-8000-000000000000",
                "account_id": ghost,
                "application_id": None,
                "message_uuid": "m-ghost",
                "url": f"{recorder.url}/status",
                "body": "{}",
            },
            max_attempts=5,
        ),
    )

    async def buried() -> bool:
        found = await jobs_of(runtime, JobKind.SEND_WEBHOOK, "m-ghost")
        return bool(found) and found[0]["state"] == DEAD

    await until(buried)
    (job,) = await jobs_of(runtime, JobKind.SEND_WEBHOOK, "m-ghost")
    assert (job["attempts"], job["last_error"]) == (1, "the account no longer exists")
    assert recorder.attempts == []
    assert await attempts_for(runtime, "m-ghost") == []
    assert job["finished_at"] is not None
