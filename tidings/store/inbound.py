"""Inbound messages: stored in `messages` (direction `inbound`), or kept aside as unroutable."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.inbound import AccountInboundSettings, InboundMessage, InboundRoute, InboundShape
from tidings.domain.message import Direction, Status
from tidings.store.content_codec import encode
from tidings.store.tables import accounts

# What routing an inbound message reads of its account (here, and coalesced in store/lookups.py).
INBOUND_SETTINGS_COLUMNS = (accounts.c.mo_callback_url, accounts.c.inbound_sms_api, accounts.c.currency)


def inbound_settings_from_row(row: RowMapping) -> AccountInboundSettings:
    return AccountInboundSettings(
        mo_callback_url=row["mo_callback_url"],
        inbound_sms_api=row["inbound_sms_api"],
        currency=row["currency"],
    )


async def get_inbound_settings(conn: AsyncConnection, api_key: str) -> AccountInboundSettings | None:
    statement = select(*INBOUND_SETTINGS_COLUMNS).where(accounts.c.api_key == api_key)
    row = (await conn.execute(statement)).mappings().first()
    return inbound_settings_from_row(row) if row is not None else None


def inbound_message_row(message: InboundMessage, route: InboundRoute, *, connector: str) -> dict[str, Any]:
    # webhook_version holds a Messages API version only; the legacy SMS shape leaves it empty.
    version = None if route.shape is InboundShape.LEGACY_SMS else route.shape.value
    return {
        "uuid": message.uuid,
        "account_id": message.account_id,
        "application_id": message.application_id,
        "direction": Direction.INBOUND.value,
        "channel": message.channel.value,
        "message_type": message.message_type.value,
        "to_address": message.to,
        "from_address": message.sender,
        "content": encode(message.content),
        "options": {},
        "context_message_uuid": message.context.message_uuid if message.context else None,
        "webhook_url": route.url,
        "webhook_version": version,
        # Received is as far as an inbound message goes.
        "status": Status.DELIVERED.value,
        "segments": message.num_messages if message.segmented else None,
        "price": message.usage.price,
        "currency": message.usage.currency,
        "connector": connector,
        "created_at": message.received_at,
        "updated_at": message.received_at,
    }


def unroutable_row(
    *,
    unroutable_id: str,
    channel: str,
    to: str,
    sender: str,
    payload: dict[str, Any],
    reason: str,
    received_at: datetime,
) -> dict[str, Any]:
    """An `unroutable_inbound` row: a message nobody could be found for, kept as it came."""
    return {
        "id": unroutable_id,
        "channel": channel,
        "to_address": to,
        "from_address": sender,
        "payload": payload,
        "reason": reason,
        "received_at": received_at,
    }
