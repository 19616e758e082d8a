"""GET /v1/messages[/{uuid}] (Tidings extensions): a stored message in the v1 vocabulary, with its
status history, and the listing's query parameters and cursors."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tidings.domain.delivery_errors import DeliveryError
from tidings.domain.errors import ERRORS_BASE, InvalidParameter, InvalidParams
from tidings.domain.history import MessageView
from tidings.domain.message import Channel, Direction, Status
from tidings.webhooks.v1 import content_fields, iso_timestamp, usage_of


def _error(error: DeliveryError) -> dict[str, Any]:
    return {
        "type": f"{ERRORS_BASE}/messages#{int(error.code)}",
        "title": str(int(error.code)),
        "detail": error.detail,
    }


def render_view(view: MessageView) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_uuid": view.uuid,
        "direction": view.direction.value,
        "channel": view.channel.value,
        "message_type": view.message_type.value,
        "to": view.to,
        "from": view.sender,
    }
    body.update(content_fields(view.message_type, view.content))
    if view.client_ref is not None:
        body["client_ref"] = view.client_ref
    body["status"] = view.status.value
    if view.error is not None:
        body["error"] = _error(view.error)
    if view.usage is not None:
        body["usage"] = usage_of(view.usage)
    if view.segments is not None:
        body["sms"] = {"count_total": str(view.segments)}
    body["created_at"] = iso_timestamp(view.created_at)
    body["updated_at"] = iso_timestamp(view.updated_at)
    body["history"] = [
        {"status": change.status.value, "timestamp": iso_timestamp(change.at)}
        | ({"error": _error(change.error)} if change.error else {})
        for change in view.history
    ]
    body["_links"] = {"self": {"href": f"/v1/messages/{view.uuid}"}}
    return body


def encode_cursor(view: MessageView) -> str:
    raw = json.dumps([view.created_at.isoformat(), view.uuid]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, uuid = json.loads(raw)
        moment = datetime.fromisoformat(created)
        if not isinstance(uuid, str) or moment.tzinfo is None:
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidParams([InvalidParameter("cursor", "is not a cursor this API gave out.")]) from None
    return moment.astimezone(UTC), uuid


class HistoryEntry(BaseModel):
    status: str
    timestamp: str
    error: dict[str, str] | None = None


class MessageViewResponse(BaseModel):
    """A stored message. Besides these members it carries its content in the v1 request's own
    members (`text`, `image`, `template`, …)."""

    model_config = ConfigDict(extra="allow")

    message_uuid: str
    direction: Direction
    channel: Channel
    message_type: str
    to: str
    from_: str = Field(alias="from")
    client_ref: str | None = None
    status: Status
    error: dict[str, str] | None = None
    usage: dict[str, str] | None = None
    created_at: str
    updated_at: str
    history: list[HistoryEntry]


class MessageListResponse(BaseModel):
    messages: list[MessageViewResponse]
    next_cursor: str | None = None
