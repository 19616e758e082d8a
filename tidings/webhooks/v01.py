"""The Messages API v0.1 shape (nested parties and content) of status and inbound webhooks
(messages-olympus.yml `MessageStatus` and `inbound-message`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tidings.domain.channel_registry import channel_spec
from tidings.domain.content import Location
from tidings.domain.events import StatusEvent
from tidings.domain.inbound import InboundMessage
from tidings.domain.message import Channel
from tidings.webhooks.v1 import content_fields, usage_of


def _timestamp(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _party(channel: Channel, address: str, *, sender: bool) -> dict[str, str]:
    spec = channel_spec(channel)
    if spec is None:
        return {"type": channel.value, "number": address}
    return {"type": spec.v01.type, spec.v01.sender_key if sender else spec.v01.recipient_key: address}


def render_status(event: StatusEvent) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_uuid": event.message_uuid,
        "to": _party(event.channel, event.to, sender=False),
        "from": _party(event.channel, event.sender, sender=True),
        "timestamp": _timestamp(event.timestamp),
        "status": event.status.value,
    }
    if event.error is not None:
        body["error"] = {"code": int(event.error.code), "reason": event.error.detail}
    if event.usage is not None:
        body["usage"] = usage_of(event.usage)
    if event.client_ref is not None:
        body["client_ref"] = event.client_ref
    return body


def _location(location: Location) -> dict[str, Any]:
    """v0.1 spells a location out, as strings (messages-olympus `locationMessageWhatsApp`), where
    v1 has `lat` and `long`."""
    body: dict[str, Any] = {"longitude": str(location.long), "latitude": str(location.lat)}
    if location.name is not None:
        body["name"] = location.name
    if location.address is not None:
        body["address"] = location.address
    return {"location": body}


def render_inbound(message: InboundMessage) -> dict[str, Any]:
    content: dict[str, Any] = {"type": message.message_type.value}
    if isinstance(message.content, Location):
        content.update(_location(message.content))
    else:
        content.update(content_fields(message.message_type, message.content))
    nested: dict[str, Any] = {"content": content}
    if message.segmented and message.text is not None:
        nested["sms"] = {"num_messages": str(message.num_messages)}
    return {
        "message_uuid": message.uuid,
        # An inbound message arrives *from* the user: the sender side's party names the user.
        "to": _party(message.channel, message.to, sender=True),
        "from": _party(message.channel, message.sender, sender=False),
        "timestamp": _timestamp(message.received_at),
        "message": nested,
        "usage": usage_of(message.usage),
    }
