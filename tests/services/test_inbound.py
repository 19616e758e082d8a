"""Inbound routing end to end on both databases: POST /sim/inbound → stored message + queued
webhook (one transaction) → the worker delivers it, signed, to the real local receiver."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from vonage_jwt import verify_signature

from tests.receiver import Received as Webhook
from tests.receiver import WebhookReceiver
from tidings.auth.webhook_signing import verify_webhook
from tidings.domain.application import Application
from tidings.domain.channel_registry import CHANNELS
from tidings.domain.content import Text
from tidings.domain.inbound import (
    AccountInboundSettings,
    InboundArrival,
    InboundOwner,
    InboundShape,
    Received,
    route_inbound,
)
from tidings.domain.message import Channel, MessageType
from tidings.queue.jobs import NewJob, job_rows
from tidings.runtime import Runtime
from tidings.services import inbound as inbound_service
from tidings.services.accounts import NewAccountCredentials, create_account
from tidings.services.inbound import InboundReceiver
from tidings.services.numbers import NumbersService
from tidings.store.applications import insert_application
from tidings.store.tables import accounts, jobs, message_events, messages, unroutable_inbound

NUMBER = "447700900001"
HANDSET = "447700900123"
V1_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
V01_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LEGACY_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


def basic(credentials: NewAccountCredentials) -> dict[str, str]:
    token = base64.b64encode(f"{credentials.api_key}:{credentials.api_secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def capabilities(inbound_url: str | None, version: str) -> dict[str, Any]:
    webhooks = {"inbound_url": {"address": inbound_url, "http_method": "POST"}} if inbound_url else {}
    return {"messages": {"webhooks": webhooks, "version": version}}


async def make_application(
    runtime: Runtime, account_id: str, inbound_url: str | None, version: str
) -> Application:
    now = datetime.now(UTC)
    application = Application(
        id=str(uuid.uuid4()),
        account_id=account_id,
        name="inbound test",
        public_key="-----BEGIN PUBLIC KEY-----\nnot used here\n-----END PUBLIC KEY-----",
        capabilities=capabilities(inbound_url, version),
        created_at=now,
        updated_at=now,
    )
    async with runtime.database.begin() as conn:
        await insert_application(conn, application)
    return application


async def rent(runtime: Runtime, account_id: str, *, app_id: str | None = None, msisdn: str = NUMBER) -> None:
    await NumbersService(runtime.database).add(account_id, "GB", msisdn, now=datetime.now(UTC), app_id=app_id)


async def set_account(runtime: Runtime, api_key: str, **values: Any) -> None:
    async with runtime.database.begin() as conn:
        await conn.execute(update(accounts).where(accounts.c.api_key == api_key).values(**values))


async def simulate(
    client: httpx.AsyncClient, who: NewAccountCredentials, text: str = "hi there", to: str = NUMBER
) -> httpx.Response:
    return await client.post(
        "/sim/inbound",
        json={"channel": "sms", "from": HANDSET, "to": to, "text": text},
        headers=basic(who),
    )


async def one_webhook(receiver: WebhookReceiver) -> Webhook:
    (webhook,) = await asyncio.to_thread(receiver.wait_for, 1)
    return webhook


def claims_of(webhook: Webhook, secret: str) -> dict[str, Any]:
    assert verify_webhook(webhook.bearer, webhook.body, secret)
    assert verify_signature(webhook.bearer, secret) is True  # the official SDK's check
    assert not verify_webhook(webhook.bearer, webhook.body + b" ", secret)
    claims: dict[str, Any] = jwt.decode(webhook.bearer, secret, algorithms=["HS256"])
    assert claims["payload_hash"] == hashlib.sha256(webhook.body).hexdigest()
    return claims


async def count(runtime: Runtime, table: Any, *where: Any) -> int:
    async with runtime.database.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one())


# --- routing rule (pure) ----------------------------------------------------------------------

_NOW = datetime(2025, 2, 3, 12, 14, 25, tzinfo=UTC)


def _number(app_id: str | None = None, mo_http_url: str | None = None) -> InboundOwner:
    return InboundOwner("abcd1234", NUMBER, app_id=app_id, mo_http_url=mo_http_url)


def _app(inbound_url: str | None, version: str = "v1") -> Application:
    return Application("app-1", "abcd1234", "a", "key", capabilities(inbound_url, version), _NOW, _NOW)


@pytest.mark.parametrize(
    ("number", "application", "settings", "expected"),
    [
        # Linked to a Messages application: its inbound URL, in its version, with its id.
        (
            _number("app-1"),
            _app("https://a/in"),
            ("https://acct/mo", "messages"),
            ("https://a/in", "v1", "app-1"),
        ),
        (
            _number("app-1"),
            _app("https://a/in", "v0.1"),
            (None, "messages"),
            ("https://a/in", "v0.1", "app-1"),
        ),
        # No application: the account-level SMS setting, in the SMS API's shape.
        (_number(), None, ("https://acct/mo", "messages"), ("https://acct/mo", "legacy_sms", None)),
        # ... where the number's own moHttpUrl overrides the account's.
        (
            _number(mo_http_url="https://num/mo"),
            None,
            ("https://acct/mo", "messages"),
            ("https://num/mo", "legacy_sms", None),
        ),
        # An application without a Messages inbound URL does not take the message.
        (
            _number("app-1"),
            _app(None),
            ("https://acct/mo", "messages"),
            ("https://acct/mo", "legacy_sms", None),
        ),
        # An account still on the SMS API keeps SMS on its SMS settings, application or not.
        (
            _number("app-1"),
            _app("https://a/in"),
            ("https://acct/mo", "sms"),
            ("https://acct/mo", "legacy_sms", None),
        ),
        # Nobody configured anything: stored, no webhook.
        (_number(), None, (None, "messages"), (None, "legacy_sms", None)),
    ],
)
def test_route_inbound(
    number: InboundOwner,
    application: Application | None,
    settings: tuple[str | None, str],
    expected: tuple[str | None, str, str | None],
) -> None:
    account = AccountInboundSettings(mo_callback_url=settings[0], inbound_sms_api=settings[1], currency="EUR")
    route = route_inbound(CHANNELS[Channel.SMS], number, application, account)
    assert (route.url, route.shape.value, route.application_id) == expected


# --- through the simulator endpoint and the worker --------------------------------------------


async def test_inbound_to_an_application_v1(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    application = await make_application(runtime, account.api_key, f"{receiver.url}/inbound", "v1")
    await rent(runtime, account.api_key, app_id=application.id)

    response = await simulate(client, account, "hello Tidings")
    assert response.status_code == 202, response.text
    message_uuid = response.json()["message_uuid"]
    assert response.json() == {"message_uuid": message_uuid, "webhook_format": "v1"}

    webhook = await one_webhook(receiver)
    assert webhook.path == "/inbound"
    body = webhook.json()
    assert V1_TIMESTAMP.match(body.pop("timestamp"))
    assert body == {
        "channel": "sms",
        "message_uuid": message_uuid,
        "to": NUMBER,
        "from": HANDSET,
        "message_type": "text",
        "text": "hello Tidings",
        "sms": {"num_messages": "1", "keyword": "HELLO"},
        "usage": {"currency": "EUR", "price": "0"},
        "origin": {"network_code": "99999"},
    }
    claims = claims_of(webhook, account.signature_secret)
    assert claims["application_id"] == application.id
    assert claims["api_key"] == account.api_key

    async with runtime.database.engine.connect() as conn:
        row = (await conn.execute(select(messages).where(messages.c.uuid == message_uuid))).mappings().one()
    assert (row["direction"], row["channel"], row["to_address"], row["from_address"]) == (
        "inbound",
        "sms",
        NUMBER,
        HANDSET,
    )
    assert (row["application_id"], row["content"], row["webhook_version"]) == (
        application.id,
        {"text": "hello Tidings"},
        "v1",
    )
    # The webhook job carried the message and its application: the body and the claims above say
    # so (its row is deleted once it is done, maybe already).
    assert await count(runtime, message_events, message_events.c.message_uuid == message_uuid) == 1


async def test_inbound_to_an_application_v01(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    application = await make_application(runtime, account.api_key, f"{receiver.url}/inbound01", "v0.1")
    await rent(runtime, account.api_key, app_id=application.id)
    long_text = "x" * 161  # two parts

    response = await simulate(client, account, long_text)
    assert response.status_code == 202
    assert response.json()["webhook_format"] == "v0.1"
    webhook = await one_webhook(receiver)
    body = webhook.json()
    assert V01_TIMESTAMP.match(body.pop("timestamp"))
    assert body == {
        "message_uuid": response.json()["message_uuid"],
        "to": {"type": "sms", "number": NUMBER},
        "from": {"type": "sms", "number": HANDSET},
        "message": {"content": {"type": "text", "text": long_text}, "sms": {"num_messages": "2"}},
        "usage": {"currency": "EUR", "price": "0"},
    }
    assert claims_of(webhook, account.signature_secret)["application_id"] == application.id


async def test_inbound_without_application_goes_to_the_account_mo_url_in_the_legacy_shape(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    await rent(runtime, account.api_key)
    await set_account(runtime, account.api_key, mo_callback_url=f"{receiver.url}/mo")

    response = await simulate(client, account, "café ☕ order")
    assert response.status_code == 202
    assert response.json()["webhook_format"] == "legacy_sms"
    webhook = await one_webhook(receiver)
    assert webhook.path == "/mo"
    body = webhook.json()
    moment = body.pop("message-timestamp")
    assert LEGACY_TIMESTAMP.match(moment)
    assert datetime.fromtimestamp(int(body.pop("timestamp")), UTC).strftime("%Y-%m-%d %H:%M:%S") == moment
    assert body == {
        "msisdn": HANDSET,
        "to": NUMBER,
        "messageId": response.json()["message_uuid"],
        "text": "café ☕ order",
        "type": "unicode",
        "keyword": "CAFÉ",
        "api-key": account.api_key,
    }
    claims = claims_of(webhook, account.signature_secret)
    assert "application_id" not in claims


async def test_the_numbers_mo_http_url_overrides_the_accounts(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    await rent(runtime, account.api_key)
    await set_account(runtime, account.api_key, mo_callback_url=f"{receiver.url}/account-mo")
    updated = await client.post(
        "/number/update",
        data={"country": "GB", "msisdn": NUMBER, "moHttpUrl": f"{receiver.url}/number-mo"},
        headers=basic(account),
    )
    assert updated.status_code == 200
    assert (await simulate(client, account)).status_code == 202
    assert (await one_webhook(receiver)).path == "/number-mo"


async def test_account_on_the_sms_api_keeps_inbound_sms_on_its_sms_settings(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    application = await make_application(runtime, account.api_key, f"{receiver.url}/inbound", "v1")
    await rent(runtime, account.api_key, app_id=application.id)
    await set_account(runtime, account.api_key, mo_callback_url=f"{receiver.url}/mo", inbound_sms_api="sms")
    assert (await simulate(client, account)).json()["webhook_format"] == "legacy_sms"
    assert (await one_webhook(receiver)).path == "/mo"


async def test_inbound_with_no_webhook_configured_is_stored(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    await rent(runtime, account.api_key)
    response = await simulate(client, account)
    assert response.status_code == 202
    assert response.json()["webhook_format"] is None
    assert await count(runtime, messages, messages.c.uuid == response.json()["message_uuid"]) == 1
    assert await count(runtime, jobs, jobs.c.kind == "send_webhook") == 0


async def test_unknown_number_is_kept_as_unroutable(
    client: httpx.AsyncClient,
    runtime: Runtime,
    account: NewAccountCredentials,
    caplog: pytest.LogCaptureFixture,
) -> None:
    response = await simulate(client, account, "anyone there?", to="447700900999")
    assert response.status_code == 404
    body = response.json()
    assert body["title"] == "Unroutable inbound message"
    async with runtime.database.engine.connect() as conn:
        row = (await conn.execute(select(unroutable_inbound))).mappings().one()
    assert row["id"] == body["unroutable_id"]
    assert (row["channel"], row["to_address"], row["from_address"]) == ("sms", "447700900999", HANDSET)
    assert row["payload"]["content"] == {"text": "anyone there?"}
    assert await count(runtime, messages) == 0
    assert await count(runtime, jobs) == 0
    assert any("unroutable" in record.getMessage() for record in caplog.records)
    assert all("anyone there?" not in record.getMessage() for record in caplog.records)


async def test_another_accounts_number_cannot_be_driven(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    """A tenant injecting into someone else's number gets the unknown-number answer, and the
    owner receives nothing."""
    await rent(runtime, account.api_key)
    await set_account(runtime, account.api_key, mo_callback_url=f"{receiver.url}/mo")
    intruder = await create_account(runtime.database, runtime.box, name="intruder")

    theirs = await simulate(client, intruder, to=NUMBER)
    nobodys = await simulate(client, intruder, to="447700900999")
    assert theirs.status_code == nobodys.status_code == 404
    assert set(theirs.json()) == set(nobodys.json())
    assert await count(runtime, messages) == 0
    assert await count(runtime, unroutable_inbound) == 2
    assert await count(runtime, jobs) == 0  # so no webhook can ever go out for them


async def test_simulator_request_errors(client: httpx.AsyncClient, account: NewAccountCredentials) -> None:
    unauthenticated = await client.post(
        "/sim/inbound", json={"channel": "sms", "from": HANDSET, "to": NUMBER, "text": "x"}
    )
    assert unauthenticated.status_code == 401
    fax = await client.post(
        "/sim/inbound",
        json={"channel": "fax", "from": HANDSET, "to": NUMBER, "text": "x"},
        headers=basic(account),
    )
    assert fax.status_code == 422 and fax.json()["type"].endswith("#1100")
    sms_image = await client.post(
        "/sim/inbound",
        json={
            "channel": "sms",
            "from": HANDSET,
            "to": NUMBER,
            "message_type": "image",
            "image": {"url": "https://a/b"},
        },
        headers=basic(account),
    )
    assert sms_image.status_code == 422 and sms_image.json()["type"].endswith("#1140")
    missing = await client.post("/sim/inbound", json={"channel": "sms", "to": "a b"}, headers=basic(account))
    assert missing.status_code == 422
    assert {p["name"] for p in missing.json()["invalid_parameters"]} == {"from", "to"}
    no_text = await client.post(
        "/sim/inbound", json={"channel": "sms", "from": HANDSET, "to": NUMBER}, headers=basic(account)
    )
    assert no_text.status_code == 422
    assert no_text.json()["invalid_parameters"][0]["reason"] == "a text message needs its `text` member."


def arrival(text: str = "hi", **fields: Any) -> InboundArrival:
    values: dict[str, Any] = {
        "connector": "simulator",
        "channel": Channel.SMS,
        "sender": HANDSET,
        "to": NUMBER,
        "message_type": MessageType.TEXT,
        "content": Text(text),
        "received_at": datetime.now(UTC),
    }
    values.update(fields)
    return InboundArrival(**values)


async def test_message_and_webhook_job_commit_together(
    runtime: Runtime, account: NewAccountCredentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    await rent(runtime, account.api_key)
    await set_account(runtime, account.api_key, mo_callback_url="http://127.0.0.1:9/mo")

    # The ingress writes the rows in one group-commit batch: the database refuses the job's row.
    def refused_job_rows(new_jobs: Sequence[NewJob], now: datetime) -> list[dict[str, Any]]:
        return [{**row, "kind": None} for row in job_rows(new_jobs, now)]  # NOT NULL

    monkeypatch.setattr(inbound_service, "job_rows", refused_job_rows)
    with pytest.raises(IntegrityError):
        await runtime.ingress.inbound(arrival())
    assert await count(runtime, messages) == 0
    assert await count(runtime, message_events) == 0
    assert await count(runtime, jobs) == 0


async def test_a_message_and_its_webhook_job_commit_together_in_a_transaction_of_the_callers(
    runtime: Runtime, account: NewAccountCredentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same, for `receive` in a transaction of its own (the CLI's simulator)."""
    await rent(runtime, account.api_key)
    await set_account(runtime, account.api_key, mo_callback_url="http://127.0.0.1:9/mo")

    async def failing_queue_webhook(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("queue write failed")

    monkeypatch.setattr(inbound_service, "enqueue", failing_queue_webhook)
    with pytest.raises(RuntimeError):
        await InboundReceiver().receive_alone(runtime.database, arrival())
    assert await count(runtime, messages) == 0
    assert await count(runtime, message_events) == 0


async def test_the_operator_routes_to_whoever_rents_the_number(
    runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    application = await make_application(runtime, account.api_key, f"{receiver.url}/inbound", "v1")
    await rent(runtime, account.api_key, app_id=application.id)
    async with runtime.database.begin() as conn:
        outcome = await InboundReceiver().receive(conn, arrival("from the network"))
    assert isinstance(outcome, Received)
    assert outcome.route.shape is InboundShape.V1
    assert runtime.worker is not None
    runtime.worker.wake()
    webhook = await one_webhook(receiver)
    assert webhook.json()["message_uuid"] == outcome.message_uuid
