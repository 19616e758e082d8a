"""Inbound message webhook bodies: Messages API v1 (flat), v0.1 (nested) and the SMS API's
inbound-sms shape. Pure: an InboundMessage in, a dict (or the exact bytes to send) out."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from tidings.domain.inbound import InboundMessage, InboundShape
from tidings.domain.message import Channel
from tidings.webhooks.status_payloads import iso_timestamp


def _price(message: InboundMessage) -> str:
    return format(message.usage.price.normalize(), "f")


def render_inbound_v1(message: InboundMessage) -> dict[str, Any]:
    """messages-v1 §12, in the order of the migration guide's example."""
    body: dict[str, Any] = {
        "channel": message.channel.value,
        "message_uuid": message.uuid,
        "to": message.to,
        "from": message.sender,
        "timestamp": iso_timestamp(message.received_at),
        "message_type": "text",
        "text": message.text,
    }
    if message.channel is Channel.SMS:
        body["sms"] = {"num_messages": str(message.num_messages), "keyword": message.keyword}
    body["usage"] = {"currency": message.usage.currency, "price": _price(message)}
    if message.network_code:
        body["origin"] = {"network_code": message.network_code}
    return body


# v0.1 names Viber's channel differently from v1.
_V01_CHANNEL = {Channel.VIBER: "viber_service_msg"}


def _v01_party(channel: Channel, address: str) -> dict[str, str]:
    key = "id" if channel in (Channel.MESSENGER, Channel.VIBER) else "number"
    return {"type": _V01_CHANNEL.get(channel, channel.value), key: address}


def render_inbound_v01(message: InboundMessage) -> dict[str, Any]:
    """messages-olympus.yml `inbound-message` (SmsInbound for SMS): nested parties and content."""
    content: dict[str, Any] = {"content": {"type": "text", "text": message.text}}
    if message.channel is Channel.SMS:
        content["sms"] = {"num_messages": str(message.num_messages)}
    moment = message.received_at.astimezone(UTC)
    return {
        "message_uuid": message.uuid,
        "to": _v01_party(message.channel, message.to),
        "from": _v01_party(message.channel, message.sender),
        "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
        "message": content,
        "usage": {"currency": message.usage.currency, "price": _price(message)},
    }


def render_inbound_legacy_sms(message: InboundMessage) -> dict[str, Any]:
    """sms.yml `InboundMessage`: what the SMS API sends for an account on its SMS settings. The
    message id is the stored message's UUID, so it matches what the simulator answered."""
    moment = message.received_at.astimezone(UTC)
    return {
        "msisdn": message.sender,
        "to": message.to,
        "messageId": message.uuid,
        "text": message.text,
        "type": "unicode" if message.is_unicode else "text",
        "keyword": message.keyword,
        "api-key": message.account_id,
        "message-timestamp": moment.strftime("%Y-%m-%d %H:%M:%S"),
        "timestamp": str(int(moment.timestamp())),
    }


_RENDERERS = {
    InboundShape.V1: render_inbound_v1,
    InboundShape.V0_1: render_inbound_v01,
    InboundShape.LEGACY_SMS: render_inbound_legacy_sms,
}


def render_inbound(message: InboundMessage, shape: InboundShape) -> bytes:
    """The exact bytes that are sent and signed; stored with the job so every retry is identical."""
    return json.dumps(_RENDERERS[shape](message), separators=(",", ":"), ensure_ascii=False).encode()
