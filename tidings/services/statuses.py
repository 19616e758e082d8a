"""Recording what happened to a message, and queueing the status webhook that tells the client."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.application import messages_capability
from tidings.domain.channel_registry import Billing, channel_spec
from tidings.domain.delivery_errors import DeliveryError
from tidings.domain.events import StatusEvent
from tidings.domain.ids import new_uuid
from tidings.domain.message import Message, Status, Usage, WebhookVersion, statuses_before
from tidings.services.webhook_dispatch import queue_webhook
from tidings.store import messages as message_store
from tidings.store.webhook_targets import webhook_settings
from tidings.webhooks.rendering import render_status


@dataclass(frozen=True)
class Handover:
    """A connector took the message: which one, in how many parts, and its price if it quoted one."""

    connector: str
    parts: int
    usage: Usage | None = None


class StatusRecorder:
    async def record(
        self,
        conn: AsyncConnection,
        message: Message,
        status: Status,
        *,
        now: datetime,
        error: DeliveryError | None = None,
        network_code: str | None = None,
        handover: Handover | None = None,
        usage: Usage | None = None,
    ) -> StatusEvent | None:
        """Apply a status in the caller's transaction; the webhook job commits with it. Returns
        None, changing nothing, when the message is already at or past that status."""
        spec = channel_spec(message.channel)
        segmented = spec is not None and spec.billing is Billing.PER_SEGMENT
        segments = handover.parts if handover and segmented else None
        usage = usage or (handover.usage if handover else None)
        advanced = await message_store.advance_status(
            conn,
            message.uuid,
            status,
            allowed_from=statuses_before(status),
            error=error,
            now=now,
            connector=handover.connector if handover else None,
            segments=segments,
            usage=usage,
        )
        if not advanced:
            return None
        event = StatusEvent(
            id=new_uuid(),
            message_uuid=message.uuid,
            channel=message.channel,
            to=message.to,
            sender=message.sender,
            status=status,
            timestamp=now,
            client_ref=message.client_ref,
            usage=usage or message.usage,
            segments=(segments or message.segments) if segmented else None,
            error=error,
            network_code=network_code,
        )
        url, version = await self._status_target(conn, message) if status.is_reported else (None, None)
        await message_store.insert_event(
            conn,
            event_id=event.id,
            message_uuid=message.uuid,
            status=status,
            occurred_at=now,
            error=error,
            webhook_url=url,
        )
        if url and version:
            await queue_webhook(
                conn,
                event_id=event.id,
                account_id=message.account_id,
                application_id=message.application_id,
                message_uuid=message.uuid,
                url=url,
                body=render_status(event, version),
                now=now,
            )
        return event

    async def _status_target(
        self, conn: AsyncConnection, message: Message
    ) -> tuple[str | None, WebhookVersion]:
        """Where the status webhook goes and in which shape: the request's own webhook_url wins, then
        the sending application's status_url, then (for account-level sends) the account's default."""
        settings = await webhook_settings(conn, message.account_id, message.application_id)
        capabilities = settings.application_capabilities if settings else None
        capability = messages_capability(capabilities) if capabilities is not None else None
        version = message.webhook_version or (capability.version if capability else WebhookVersion.V1)
        if message.webhook_url:
            return message.webhook_url, version
        if message.application_id:
            return (capability.status_url.address if capability and capability.status_url else None), version
        return (settings.account_status_url if settings else None), version
