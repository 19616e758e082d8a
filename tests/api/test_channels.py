"""POST /v1/messages on every channel and every outbound type the channel registry lists: what is
accepted and stored (read back through GET /v1/messages/{uuid} and the store's typed options),
what is refused and under which wire names, and the status webhooks each channel produces."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.api.channel_cases import INVALID, VALID, WRONG_TYPE, body
from tests.api.support import (
    ERRORS,
    V1_TIMESTAMP,
    Refusing,
    assert_problem,
    basic,
    invalid_names,
    send,
    stored_message,
    view,
    webhooks_of,
)
from tests.receiver import WebhookReceiver
from tidings.domain.channel_options import ChannelOptions
from tidings.domain.channel_registry import CHANNELS
from tidings.domain.message import Channel, Status
from tidings.runtime import Runtime
from tidings.services.accounts import NewAccountCredentials
from tidings.store.tables import jobs, messages

# The request members that carry a message's content, which GET renders back in the same shape.
CONTENT_MEMBERS = frozenset(
    {"text", "image", "audio", "video", "file", "vcard", "content", "template", "sticker", "custom"}
    | {"reaction", "card", "carousel", "suggestions"}
)


def content_of(message: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in message.items() if name in CONTENT_MEMBERS}


async def stored_counts(runtime: Runtime) -> tuple[int, int]:
    async with runtime.database.read() as conn:
        message_count = (await conn.execute(select(func.count()).select_from(messages))).scalar_one()
        job_count = (await conn.execute(select(func.count()).select_from(jobs))).scalar_one()
    return message_count, job_count


def test_every_outbound_type_in_the_registry_has_a_valid_case() -> None:
    assert {param.values[0]["message_type"] for param in MEDIA} >= {
        "image",
        "audio",
        "video",
        "file",
        "vcard",
    }
    covered = {(param.values[0]["channel"], param.values[0]["message_type"]) for param in VALID}
    expected = {(channel.value, kind.value) for channel, spec in CHANNELS.items() for kind in spec.outbound}
    assert covered == expected


def test_every_channel_has_refusals_and_a_type_it_lacks() -> None:
    refused = {param.values[0]["channel"] for param in INVALID} | {"sms"}  # SMS: test_messages_v1.py
    lacking = {channel for channel, _ in WRONG_TYPE}
    assert refused == lacking == {channel.value for channel in CHANNELS}
    for channel, kind in WRONG_TYPE:
        assert kind not in CHANNELS[Channel(channel)].outbound


@pytest.mark.parametrize(("request_body", "options"), VALID)
async def test_a_valid_request_is_accepted_and_stored_with_its_typed_content_and_options(
    client: httpx.AsyncClient,
    runtime: Runtime,
    account: NewAccountCredentials,
    request_body: dict[str, Any],
    options: ChannelOptions | None,
) -> None:
    message_uuid = await send(client, account, request_body)

    shown = await view(client, account, message_uuid)
    assert shown["message_uuid"] == message_uuid
    assert shown["direction"] == "outbound"
    assert (shown["channel"], shown["message_type"]) == (
        request_body["channel"],
        request_body["message_type"],
    )
    assert (shown["to"], shown["from"]) == (request_body["to"], request_body["from"])
    assert content_of(shown) == content_of(request_body)
    assert shown["usage"]["currency"] and "price" in shown["usage"]

    stored = await stored_message(runtime, message_uuid)
    assert stored.options == options
    assert stored.context_message_uuid == request_body.get("context", {}).get("message_uuid")
    assert stored.ttl == request_body.get("ttl", request_body.get("viber_service", {}).get("ttl"))


@pytest.mark.parametrize(("request_body", "names"), INVALID)
async def test_an_invalid_request_is_422_naming_every_bad_field_and_stores_nothing(
    refusing: Refusing,
    request_body: dict[str, Any],
    names: list[str],
) -> None:
    response = await refusing.client.post("/v1/messages", json=request_body, headers=basic(refusing.account))
    assert invalid_names(response) == names
    assert await stored_counts(refusing.runtime) == (0, 0)


def _stripped(request: dict[str, Any]) -> dict[str, Any]:
    dropped = {"to", "from", request["message_type"]}
    return {key: value for key, value in request.items() if key not in dropped}


@pytest.mark.parametrize(("request_body", "options"), VALID)
async def test_every_model_requires_its_parties_and_its_content(
    refusing: Refusing,
    request_body: dict[str, Any],
    options: ChannelOptions | None,
) -> None:
    kind = request_body["message_type"]
    optional = request_body["channel"] == "whatsapp" and kind == "custom"  # as in the SDK
    response = await refusing.client.post(
        "/v1/messages", json=_stripped(request_body), headers=basic(refusing.account)
    )
    assert invalid_names(response) == sorted({"from", "to"} | (set() if optional else {kind}))
    assert await stored_counts(refusing.runtime) == (0, 0)


MEDIA = [param for param in VALID if "url" in (param.values[0].get(param.values[0]["message_type"]) or {})]


@pytest.mark.parametrize(("request_body", "options"), MEDIA)
async def test_every_media_model_wants_an_http_url(
    refusing: Refusing,
    request_body: dict[str, Any],
    options: ChannelOptions | None,
) -> None:
    kind = request_body["message_type"]
    for url in ("file:///etc/passwd", "https://exa mple.com/a.png", 42):
        broken = {**request_body, kind: {**request_body[kind], "url": url}}
        response = await refusing.client.post("/v1/messages", json=broken, headers=basic(refusing.account))
        assert invalid_names(response) == [f"{kind}.url"], url


@pytest.mark.parametrize(("channel", "message_type"), WRONG_TYPE)
async def test_a_type_the_channel_does_not_have_is_1140(
    refusing: Refusing,
    channel: str,
    message_type: str,
) -> None:
    request = body(channel, message_type, text="x", image={"url": "https://example.com/a.png"})
    response = await refusing.client.post("/v1/messages", json=request, headers=basic(refusing.account))
    problem = assert_problem(response, 422, f"{ERRORS}/messages#1140", "Invalid message type")
    assert message_type in problem["detail"] and channel in problem["detail"]
    assert await stored_counts(refusing.runtime) == (0, 0)


@pytest.mark.parametrize("channel", ["email", "telegram", "WhatsApp", "viber", 3, None])
async def test_an_unknown_channel_is_1100(refusing: Refusing, channel: Any) -> None:
    request = {**body("whatsapp", "text", text="x"), "channel": channel}
    response = await refusing.client.post("/v1/messages", json=request, headers=basic(refusing.account))
    if channel is None:  # absent rather than unknown
        assert invalid_names(response) == ["channel"]
    else:
        assert_problem(response, 422, f"{ERRORS}/messages#1100", "Unsupported channel")
    assert await stored_counts(refusing.runtime) == (0, 0)


@pytest.mark.parametrize(
    "failover",
    [[body("sms", "text", text="fallback")], [], {"channel": "sms"}],
    ids=["one-fallback", "empty-list", "object"],
)
async def test_failover_is_refused_as_not_supported_yet(refusing: Refusing, failover: Any) -> None:
    request = body("whatsapp", "text", text="first try", failover=failover)
    response = await refusing.client.post("/v1/messages", json=request, headers=basic(refusing.account))
    assert invalid_names(response) == ["failover"]
    (param,) = response.json()["invalid_parameters"]
    assert "not supported" in param["reason"]
    assert await stored_counts(refusing.runtime) == (0, 0)


# --- status webhooks, per channel ----------------------------------------------------------------

FIRST_OF: dict[Channel, dict[str, Any]] = {
    Channel(param.values[0]["channel"]): param.values[0] for param in reversed(VALID)
}


@pytest.mark.parametrize("channel", list(CHANNELS), ids=str)
async def test_each_channel_reports_its_statuses_to_the_webhook_url_in_v1(
    client: httpx.AsyncClient, account: NewAccountCredentials, receiver: WebhookReceiver, channel: Channel
) -> None:
    spec = CHANNELS[channel]
    request = {
        **FIRST_OF[channel],
        "client_ref": f"ref-{channel.value}",
        "webhook_url": f"{receiver.url}/status/{channel.value}",
        "webhook_version": "v1",
    }
    message_uuid = await send(client, account, request)
    expected = [Status.SUBMITTED, Status.DELIVERED] + ([Status.READ] if spec.has_read_receipts else [])

    webhooks = await webhooks_of(receiver, message_uuid, len(expected))
    assert [w.json()["status"] for w in webhooks] == [status.value for status in expected]
    for webhook in webhooks:
        assert webhook.path == f"/status/{channel.value}"
        payload = webhook.json()
        assert V1_TIMESTAMP.match(payload.pop("timestamp"))
        common = {
            "message_uuid": message_uuid,
            "to": request["to"],
            "from": request["from"],
            "channel": channel.value,
            "client_ref": request["client_ref"],
        }
        assert {key: payload.pop(key) for key in common} == common
        status = payload.pop("status")
        # What the event knows: a price; the network code a carrier's receipt carries (not the
        # submission); SMS's segment count.
        assert set(payload.pop("usage")) == {"currency", "price"}
        if spec.carrier_network and status != "submitted":
            assert payload.pop("destination") == {"network_code": "99999"}
        if channel is Channel.SMS:
            assert payload.pop("sms") == {"count_total": "1"}
        assert payload == {}
    assert (await view(client, account, message_uuid))["status"] == expected[-1].value
