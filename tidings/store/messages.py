"""Messages and their status history."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import bindparam, select
from sqlalchemy.engine import RowMapping

from tidings.domain.content import Content
from tidings.domain.delivery_errors import DeliveryError
from tidings.domain.message import Channel, Direction, Message, MessageType, Status, Usage, WebhookVersion
from tidings.store.content_codec import decode_content, decode_options, encode
from tidings.store.tables import messages


def message_row(message: Message) -> dict[str, Any]:
    return {
        "uuid": message.uuid,
        "account_id": message.account_id,
        "application_id": message.application_id,
        "direction": Direction.OUTBOUND.value,
        "channel": message.channel.value,
        "message_type": message.message_type.value,
        "to_address": message.to,
        "from_address": message.sender,
        "content": encode(message.content),
        "options": encode(message.options) if message.options is not None else {},
        "context_message_uuid": message.context_message_uuid,
        "client_ref": message.client_ref,
        "webhook_url": message.webhook_url,
        "webhook_version": message.webhook_version.value if message.webhook_version else None,
        "ttl": message.ttl,
        "trusted_recipient": message.trusted_recipient,
        "status": message.status.value,
        "created_at": message.created_at,
        "updated_at": message.created_at,
    }


def message_from_row(row: RowMapping) -> Message:
    """An outbound message as stored (inbound ones are read by store/inbound.py)."""
    channel = Channel(row["channel"])
    message_type = MessageType(row["message_type"])
    # An outbound message type's content is always one of the outbound kinds.
    content = cast(Content, decode_content(message_type, row["content"]))
    return Message(
        uuid=row["uuid"],
        account_id=row["account_id"],
        application_id=row["application_id"],
        channel=channel,
        message_type=message_type,
        to=row["to_address"],
        sender=row["from_address"],
        content=content,
        options=decode_options(channel, row["options"]),
        context_message_uuid=row["context_message_uuid"],
        client_ref=row["client_ref"],
        webhook_url=row["webhook_url"],
        webhook_version=WebhookVersion(row["webhook_version"]) if row["webhook_version"] else None,
        ttl=row["ttl"],
        trusted_recipient=row["trusted_recipient"],
        status=Status(row["status"]),
        created_at=row["created_at"],
        usage=Usage(currency=row["currency"], price=Decimal(row["price"]))
        if row["price"] is not None and row["currency"]
        else None,
        segments=row["segments"],
        connector=row["connector"],
    )


# The worker's statements are built once (per set of columns), not per call: building one and its
# cache key costs more than running it.
_BY_UUID = select(messages).where(messages.c.uuid == bindparam("message_uuid"))


def event_row(
    *,
    event_id: str,
    message_uuid: str,
    status: Status,
    occurred_at: datetime,
    error: DeliveryError | None,
    webhook_url: str | None,
) -> dict[str, Any]:
    """A `message_events` row: one status a message reached, and where its webhook went."""
    return {
        "id": event_id,
        "message_uuid": message_uuid,
        "status": status.value,
        "occurred_at": occurred_at,
        "error_code": int(error.code) if error else None,
        "error_detail": error.detail if error else None,
        "webhook_url": webhook_url,
    }
