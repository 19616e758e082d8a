"""Inbound on every channel, of every type the channel registry says it delivers: POST /sim/inbound
→ the address's account (a rented number, or an external account linked with the ExternalAccounts
service) → its application's inbound_url, in v1 (and v0.1), signed. An address nobody linked is
kept as unroutable."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.api.support import V1_TIMESTAMP, link, simulate, view, webhooks_of
from tests.receiver import WebhookReceiver
from tests.services.test_inbound import claims_of, make_application, rent
from tidings.domain.application import Application
from tidings.domain.channel_registry import CHANNELS, InboundAddress
from tidings.domain.message import Channel
from tidings.runtime import Runtime
from tidings.services.accounts import NewAccountCredentials, create_account
from tidings.store.tables import messages, unroutable_inbound

# Our address on each channel, and a user there.
OURS = {
    Channel.SMS: "447700900001",
    Channel.MMS: "447700900002",
    Channel.WHATSAPP: "447700900500",
    Channel.MESSENGER: "1122334455",
    Channel.VIBER: "tidings-service",
    Channel.RCS: "tidings-agent",
}
USERS = {Channel.MESSENGER: "99887766"}
HANDSET = "447700900123"
MEDIA = {"url": "https://example.com/media/a.jpg", "caption": "look"}
V01_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

# What a user sends, in the simulator's (the v1 inbound webhook's own) members, per type.
CONTENT: dict[str, dict[str, Any]] = {
    "text": {"text": "hello there"},
    "image": {"image": MEDIA},
    "audio": {"audio": {"url": "https://example.com/a.ogg"}},
    "video": {"video": {"url": "https://example.com/v.mp4", "caption": "clip"}},
    "file": {"file": {"url": "https://example.com/f.pdf", "name": "f.pdf", "caption": "doc"}},
    "vcard": {"vcard": {"url": "https://example.com/me.vcf", "name": "me.vcf"}},
    "content": {
        "content": [
            {"type": "image", "url": MEDIA["url"], "caption": "one"},
            {"type": "file", "url": MEDIA["url"]},
        ]
    },
    "sticker": {"sticker": {"url": "https://example.com/s.webp"}},
    "location": {"location": {"lat": 51.5072, "long": -0.1276, "name": "Shop", "address": "1 High St"}},
    "reply": {"reply": {"id": "row-2", "title": "Tuesday", "description": "10:00"}},
    "button": {"button": {"payload": "CONFIRM", "text": "Yes, confirm"}},
    "order": {
        "order": {
            "catalog_id": "cat-1",
            "text": "for Friday",
            "product_items": [
                {"product_retailer_id": "sku-1", "quantity": "2", "item_price": "9.99", "currency": "EUR"}
            ],
        }
    },
    "reaction": {"reaction": {"action": "react", "emoji": "❤️"}},
    "unsupported": {},
}
CASES = [
    pytest.param(channel, kind.value, id=f"{channel.value}-{kind.value}")
    for channel, spec in CHANNELS.items()
    for kind in sorted(spec.inbound)
]


def test_every_inbound_type_in_the_registry_has_content() -> None:
    assert {kind.value for spec in CHANNELS.values() for kind in spec.inbound} <= set(CONTENT)
    assert set(OURS) == set(CHANNELS)


async def own(runtime: Runtime, account_id: str, channel: Channel, application: Application | None) -> str:
    """Makes the channel's address ours: a number rented, or an external account linked."""
    app_id = application.id if application else None
    if CHANNELS[channel].inbound_address is InboundAddress.NUMBER:
        await rent(runtime, account_id, app_id=app_id, msisdn=OURS[channel])
    else:
        await link(runtime, account_id, channel, OURS[channel], app_id)
    return OURS[channel]


def arrival(channel: Channel, message_type: str, **extra: Any) -> dict[str, Any]:
    return {
        "channel": channel.value,
        "from": USERS.get(channel, HANDSET),
        "to": OURS[channel],
        "message_type": message_type,
        **CONTENT[message_type],
        **extra,
    }


@pytest.mark.parametrize(("channel", "message_type"), CASES)
async def test_each_inbound_type_reaches_the_application_in_v1_signed(
    client: httpx.AsyncClient,
    runtime: Runtime,
    account: NewAccountCredentials,
    receiver: WebhookReceiver,
    channel: Channel,
    message_type: str,
) -> None:
    application = await make_application(runtime, account.api_key, f"{receiver.url}/in/{channel.value}", "v1")
    await own(runtime, account.api_key, channel, application)
    response = await simulate(client, account, arrival(channel, message_type))
    assert response.status_code == 202, response.text
    message_uuid = response.json()["message_uuid"]
    assert response.json() == {"message_uuid": message_uuid, "webhook_format": "v1"}

    (webhook,) = await webhooks_of(receiver, message_uuid, 1)
    assert webhook.path == f"/in/{channel.value}"
    payload = webhook.json()
    assert V1_TIMESTAMP.match(payload.pop("timestamp"))
    expected: dict[str, Any] = {
        "channel": channel.value,
        "message_uuid": message_uuid,
        "to": OURS[channel],
        "from": USERS.get(channel, HANDSET),
        "message_type": message_type,
        **CONTENT[message_type],
        "usage": {"currency": "EUR", "price": "0"},
    }
    if channel is Channel.SMS:
        expected["sms"] = {"num_messages": "1", "keyword": "HELLO"}
    if CHANNELS[channel].carrier_network:
        expected["origin"] = {"network_code": "99999"}
    assert payload == expected
    claims = claims_of(webhook, account.signature_secret)
    assert (claims["application_id"], claims["api_key"]) == (application.id, account.api_key)
    # Stored as the account's, in the same vocabulary.
    shown = await view(client, account, message_uuid)
    assert (shown["direction"], shown["message_type"]) == ("inbound", message_type)
    assert {key: shown[key] for key in CONTENT[message_type]} == CONTENT[message_type]


async def test_a_whatsapp_reply_carries_the_users_profile_and_the_message_it_answers(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    application = await make_application(runtime, account.api_key, f"{receiver.url}/in", "v1")
    await own(runtime, account.api_key, Channel.WHATSAPP, application)
    extra = {"profile_name": "Ana Lima", "context": {"message_uuid": "aaaaaaaa-0000-4000-8000-000000000001"}}
    response = await simulate(client, account, arrival(Channel.WHATSAPP, "reply", **extra))
    (webhook,) = await webhooks_of(receiver, response.json()["message_uuid"], 1)
    payload = webhook.json()
    assert payload["profile"] == {"name": "Ana Lima"}
    assert payload["context"] == {"message_uuid": "aaaaaaaa-0000-4000-8000-000000000001"}
    assert payload["reply"] == CONTENT["reply"]["reply"]


V01 = [
    (
        Channel.WHATSAPP,
        "location",
        {"type": "whatsapp", "number": OURS[Channel.WHATSAPP]},
        {"type": "whatsapp", "number": HANDSET},
        {
            "type": "location",
            "location": {
                "latitude": "51.5072",
                "longitude": "-0.1276",
                "name": "Shop",
                "address": "1 High St",
            },
        },
    ),
    (
        Channel.MESSENGER,
        "image",
        {"type": "messenger", "id": OURS[Channel.MESSENGER]},
        {"type": "messenger", "id": USERS[Channel.MESSENGER]},
        {"type": "image", "image": MEDIA},
    ),
    (
        Channel.VIBER,
        "text",
        {"type": "viber_service_msg", "id": OURS[Channel.VIBER]},
        {"type": "viber_service_msg", "number": HANDSET},
        {"type": "text", "text": "hello there"},
    ),
    (
        Channel.MMS,
        "content",
        {"type": "mms", "number": OURS[Channel.MMS]},
        {"type": "mms", "number": HANDSET},
        {"type": "content", **CONTENT["content"]},
    ),
]


@pytest.mark.parametrize(
    ("channel", "message_type", "to", "sender", "content"), V01, ids=lambda v: str(v)[:20]
)
async def test_an_application_on_v01_gets_the_nested_shape(
    client: httpx.AsyncClient,
    runtime: Runtime,
    account: NewAccountCredentials,
    receiver: WebhookReceiver,
    channel: Channel,
    message_type: str,
    to: dict[str, str],
    sender: dict[str, str],
    content: dict[str, Any],
) -> None:
    application = await make_application(runtime, account.api_key, f"{receiver.url}/in01", "v0.1")
    await own(runtime, account.api_key, channel, application)
    response = await simulate(client, account, arrival(channel, message_type))
    assert response.json()["webhook_format"] == "v0.1"
    message_uuid = response.json()["message_uuid"]
    (webhook,) = await webhooks_of(receiver, message_uuid, 1)
    payload = webhook.json()
    assert V01_TIMESTAMP.match(payload.pop("timestamp"))
    assert payload == {
        "message_uuid": message_uuid,
        "to": to,
        "from": sender,
        "message": {"content": content},
        "usage": {"currency": "EUR", "price": "0"},
    }
    assert claims_of(webhook, account.signature_secret)["application_id"] == application.id


async def test_a_linked_address_without_an_application_is_stored_only(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials
) -> None:
    await own(runtime, account.api_key, Channel.RCS, None)
    response = await simulate(client, account, arrival(Channel.RCS, "text"))
    assert response.status_code == 202
    assert response.json()["webhook_format"] is None
    assert (await view(client, account, response.json()["message_uuid"]))["text"] == "hello there"


@pytest.mark.parametrize("channel", [c for c, spec in CHANNELS.items()], ids=str)
async def test_an_address_nobody_linked_is_kept_as_unroutable(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, channel: Channel
) -> None:
    response = await simulate(client, account, arrival(channel, "text"))
    assert response.status_code == 404, response.text
    assert response.json()["title"] == "Unroutable inbound message"
    async with runtime.database.read() as conn:
        kept = (await conn.execute(select(unroutable_inbound))).mappings().one()
        stored = (await conn.execute(select(messages))).all()
    assert kept["id"] == response.json()["unroutable_id"]
    assert (kept["channel"], kept["to_address"]) == (channel.value, OURS[channel])
    assert kept["payload"]["content"] == {"text": "hello there"}
    assert stored == []


async def test_another_accounts_external_account_cannot_be_driven(
    client: httpx.AsyncClient, runtime: Runtime, account: NewAccountCredentials, receiver: WebhookReceiver
) -> None:
    application = await make_application(runtime, account.api_key, f"{receiver.url}/in", "v1")
    await own(runtime, account.api_key, Channel.MESSENGER, application)
    intruder = await create_account(runtime.database, runtime.box, name="intruder")
    theirs = await simulate(client, intruder, arrival(Channel.MESSENGER, "text"))
    nobodys = await simulate(client, intruder, {**arrival(Channel.MESSENGER, "text"), "to": "5550001"})
    assert theirs.status_code == nobodys.status_code == 404
    assert set(theirs.json()) == set(nobodys.json())
    async with runtime.database.read() as conn:
        assert (await conn.execute(select(messages))).all() == []
        assert len((await conn.execute(select(unroutable_inbound))).all()) == 2


@pytest.mark.parametrize(
    ("request_body", "status", "suffix", "names"),
    [
        (arrival(Channel.WHATSAPP, "text") | {"message_type": "template"}, 422, "#1140", None),
        (arrival(Channel.RCS, "text") | {"message_type": "card"}, 422, "#1140", None),
        (arrival(Channel.MESSENGER, "location"), 422, "#1140", None),
        (arrival(Channel.VIBER, "audio"), 422, "#1140", None),
        (arrival(Channel.SMS, "image"), 422, "#1140", None),
        (arrival(Channel.WHATSAPP, "text") | {"channel": "telegram"}, 422, "#1100", None),
        ({**arrival(Channel.WHATSAPP, "location"), "location": None}, 422, "#1150", ["location"]),
        (
            {**arrival(Channel.WHATSAPP, "order"), "order": {"catalog_id": "c", "product_items": []}},
            422,
            "#1150",
            ["order.product_items"],
        ),
        (
            {**arrival(Channel.RCS, "location"), "location": {"lat": 91, "long": 0}},
            422,
            "#1150",
            ["location.lat"],
        ),
        (
            {**arrival(Channel.MMS, "content"), "content": [{"type": "sticker", "url": "https://e.com/x"}]},
            422,
            "#1150",
            ["content.0.type"],
        ),
    ],
    ids=[
        "wa-template",
        "rcs-card",
        "messenger-location",
        "viber-audio",
        "sms-image",
        "unknown-channel",
        "member-missing",
        "order-empty",
        "latitude",
        "content-kind",
    ],
)
async def test_what_a_channel_cannot_deliver_is_refused(
    client: httpx.AsyncClient,
    runtime: Runtime,
    account: NewAccountCredentials,
    request_body: dict[str, Any],
    status: int,
    suffix: str,
    names: list[str] | None,
) -> None:
    response = await simulate(client, account, request_body)
    assert response.status_code == status, response.text
    assert response.json()["type"].endswith(suffix)
    if names is not None:
        assert [p["name"] for p in response.json()["invalid_parameters"]] == names
    async with runtime.database.read() as conn:
        assert (await conn.execute(select(unroutable_inbound))).all() == []
