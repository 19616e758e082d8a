"""The Messages API v1 shape (flat) of status and inbound webhooks, and of a message's content.

Pure functions: a domain object in, a JSON-ready dict out. Which members a body carries follows
from what the event knows (a network code, a segment count, a profile name), never from which
channel it is on.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tidings.domain.content import (
    Carousel,
    Content,
    Custom,
    InboundContent,
    MediaList,
    Suggestion,
    Template,
    Text,
    Unsupported,
)
from tidings.domain.errors import ERRORS_BASE
from tidings.domain.events import StatusEvent
from tidings.domain.inbound import InboundMessage
from tidings.domain.message import MessageType, Usage


def iso_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, as the published examples render it (2025-02-03T12:14:25Z)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def price(amount: Decimal) -> str:
    """A price as the webhooks spell it: a string, without trailing zeros (0.0333)."""
    return format(amount.normalize(), "f")


def usage_of(usage: Usage) -> dict[str, str]:
    return {"currency": usage.currency, "price": price(usage.price)}


def _plain(value: Any) -> Any:
    """A content dataclass as JSON members, leaving out what is unset."""
    if is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: _plain(getattr(value, field.name))
            for field in fields(value)
            if getattr(value, field.name) is not None and getattr(value, field.name) != ()
        }
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


def suggestions(items: tuple[Suggestion, ...]) -> list[dict[str, Any]]:
    return [_plain(item) for item in items]


def content_fields(message_type: MessageType, content: Content | InboundContent) -> dict[str, Any]:
    """The members a v1 body uses for this content: `text`, or an object named by the message
    type (`image: {url, caption}`, `reaction: {action, emoji}`…), plus RCS `suggestions`."""
    if isinstance(content, Text):
        body: dict[str, Any] = {"text": content.text}
        if content.suggestions:
            body["suggestions"] = suggestions(content.suggestions)
        return body
    if isinstance(content, Unsupported):
        return {}
    if isinstance(content, MediaList):
        return {"content": [_plain(item) for item in content.items]}
    if isinstance(content, Custom):
        return {"custom": dict(content.payload)} if content.payload is not None else {}
    if isinstance(content, Template):
        template: dict[str, Any] = dict(content.extra or {})
        template["name"] = content.name
        if content.parameters is not None:
            template["parameters"] = list(content.parameters)
        return {"template": template}
    if isinstance(content, Carousel):
        body = {"carousel": {"cards": [_plain(card) for card in content.cards]}}
        if content.suggestions:
            body["suggestions"] = suggestions(content.suggestions)
        return body
    return {message_type.value: _plain(content)}


def render_status(event: StatusEvent) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_uuid": event.message_uuid,
        "to": event.to,
        "from": event.sender,
        "timestamp": iso_timestamp(event.timestamp),
        "status": event.status.value,
        "channel": event.channel.value,
    }
    if event.client_ref is not None:
        body["client_ref"] = event.client_ref
    if event.error is not None:
        body["error"] = {
            "type": f"{ERRORS_BASE}/messages#{int(event.error.code)}",
            "title": str(int(event.error.code)),
            "detail": event.error.detail,
            "instance": event.id.replace("-", ""),
        }
    if event.usage is not None:
        body["usage"] = usage_of(event.usage)
    if event.network_code:
        body["destination"] = {"network_code": event.network_code}
    if event.segments is not None:
        body["sms"] = {"count_total": str(event.segments)}
    return body


def render_inbound(message: InboundMessage) -> dict[str, Any]:
    """messages-v1 §12, in the order of the migration guide's example."""
    body: dict[str, Any] = {
        "channel": message.channel.value,
        "message_uuid": message.uuid,
        "to": message.to,
        "from": message.sender,
        "timestamp": iso_timestamp(message.received_at),
        "message_type": message.message_type.value,
    }
    body.update(content_fields(message.message_type, message.content))
    if message.segmented and message.text is not None:
        body["sms"] = {"num_messages": str(message.num_messages), "keyword": message.keyword}
    body["usage"] = usage_of(message.usage)
    if message.network_code:
        body["origin"] = {"network_code": message.network_code}
    if message.profile_name:
        body["profile"] = {"name": message.profile_name}
    if message.context is not None:
        context = {"message_uuid": message.context.message_uuid, "message_from": message.context.message_from}
        body["context"] = {key: value for key, value in context.items() if value is not None}
    return body
