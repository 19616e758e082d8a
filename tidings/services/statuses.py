"""Recording what happened to a message, and queueing the status webhook that tells the client."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.delivery_errors import DeliveryError
from tidings.domain.events import StatusEvent
from tidings.domain.message import Message, Status, WebhookVersion
from tidings.queue.jobs import NewJob, enqueue
from tidings.services.job_kinds import JobKind
from tidings.store import accounts as account_store
from tidings.store import applications as application_store
from tidings.store import messages as message_store
from tidings.webhooks.status_payloads import render_status


def moves_forward(current: Status, new: Status) -> bool:
    """A report that would move a message backwards, or repeats its state, changes nothing."""
    return not current.is_final and new.rank > current.rank


class StatusRecorder:
    def __init__(self, *, webhook_max_attempts: int) -> None:
        self._webhook_max_attempts = webhook_max_attempts

    async def record(
        self,
        conn: AsyncConnection,
        message: Message,
        status: Status,
        *,
        now: datetime,
        error: DeliveryError | None = None,
        network_code: str | None = None,
    ) -> StatusEvent | None:
        """Apply a status in the caller's transaction; the webhook job commits with it."""
        if not moves_forward(message.status, status):
            return None
        usage, segments = await message_store.get_usage(conn, message.uuid)
        event = StatusEvent(
            id=str(uuid.uuid4()),
            message_uuid=message.uuid,
            channel=message.channel,
            to=message.to,
            sender=message.sender,
            status=status,
            timestamp=now,
            client_ref=message.client_ref,
            usage=usage,
            segments=segments,
            error=error,
            network_code=network_code,
        )
        url, version = await self._status_target(conn, message)
        await message_store.insert_event(
            conn,
            event_id=event.id,
            message_uuid=message.uuid,
            status=status,
            occurred_at=now,
            error=error,
            webhook_url=url,
        )
        await message_store.set_status(conn, message.uuid, status, error=error, now=now)
        if url:
            body = render_status(event, version)
            webhook = NewJob(
                kind=JobKind.SEND_WEBHOOK.value,
                payload={
                    "event_id": event.id,
                    "account_id": message.account_id,
                    "application_id": message.application_id,
                    "message_uuid": message.uuid,
                    "url": url,
                    "body": body.decode(),
                },
                # One message's webhooks go out one at a time, in the order of its events.
                ordering_key=f"webhook:{message.uuid}",
                max_attempts=self._webhook_max_attempts,
            )
            await enqueue(conn, [webhook], now=now, default_max_attempts=self._webhook_max_attempts)
        return event

    async def _status_target(
        self, conn: AsyncConnection, message: Message
    ) -> tuple[str | None, WebhookVersion]:
        """Where the status webhook goes and in which shape: the request's own webhook_url wins, then
        the sending application's status_url, then the account's default."""
        application = None
        if message.application_id:
            application = await application_store.get_application(
                conn, message.application_id, account_id=message.account_id
            )
        capability = application.messages if application else None
        version = message.webhook_version or (capability.version if capability else WebhookVersion.V1)
        if message.webhook_url:
            return message.webhook_url, version
        if capability and capability.status_url:
            return capability.status_url.address, version
        if application is None:
            account = await account_store.get_account(conn, message.account_id)
            return (account.status_url if account else None), version
        return None, version
