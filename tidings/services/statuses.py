"""Recording what happened to a message, and queueing the status webhook that tells the client.

A status change is rendered into writes (store/writes.py): the message's status moves, guarded by
the status it must move from, and only if it does are its event and its webhook job written, and
whatever else depends on it (the parts a connector gave back, a refund). Where the webhook goes is
read beforehand; its body is rendered now, so that every attempt sends the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tidings.domain.application import messages_capability
from tidings.domain.channel_registry import Billing, channel_spec
from tidings.domain.delivery_errors import DeliveryError
from tidings.domain.events import StatusEvent
from tidings.domain.ids import new_time_ordered_uuid
from tidings.domain.message import Message, Status, Usage, WebhookVersion
from tidings.services.webhook_dispatch import webhook_job
from tidings.store.lookups import Tracked
from tidings.store.statements import Execute
from tidings.store.writes import Writes, guarded
from tidings.webhooks.rendering import render_status


@dataclass(frozen=True)
class Handover:
    """A connector took the message: which one, in how many parts, and its price if it quoted one."""

    connector: str
    parts: int
    usage: Usage | None = None


@dataclass(frozen=True)
class WebhookTarget:
    """Where a message's status webhooks go, and in which shape; no URL: nowhere."""

    url: str | None
    version: WebhookVersion


class StatusRecorder:
    def __init__(self, writes: Writes) -> None:
        self._writes = writes

    @staticmethod
    def target(tracked: Tracked) -> WebhookTarget:
        """The request's own webhook_url wins, then the sending application's status_url, then
        (for account-level sends) the account's default."""
        message, settings = tracked.message, tracked.settings
        capabilities = settings.application_capabilities
        capability = messages_capability(capabilities) if capabilities is not None else None
        version = message.webhook_version or (capability.version if capability else WebhookVersion.V1)
        if message.webhook_url:
            return WebhookTarget(message.webhook_url, version)
        if message.application_id:
            url = capability.status_url.address if capability and capability.status_url else None
            return WebhookTarget(url, version)
        return WebhookTarget(settings.account_status_url, version)

    def change(
        self,
        message: Message,
        status: Status,
        *,
        target: WebhookTarget,
        now: datetime,
        error: DeliveryError | None = None,
        network_code: str | None = None,
        handover: Handover | None = None,
        usage: Usage | None = None,
        when_all_parts: bool = False,
        only_from: tuple[Status, ...] | None = None,
        then: Sequence[Execute] = (),
    ) -> list[Execute]:
        """The writes of moving `message` to `status`; they change nothing when it is already at
        or past it. `then` are writes that must happen only if it moves."""
        spec = channel_spec(message.channel)
        segmented = spec is not None and spec.billing is Billing.PER_SEGMENT
        segments = handover.parts if handover and segmented else None
        usage = usage or (handover.usage if handover else None)
        move = self._writes.advance_status(
            message.uuid,
            status,
            now=now,
            error=error,
            connector=handover.connector if handover else None,
            segments=segments,
            price=usage.price if usage else None,
            currency=usage.currency if usage else None,
            when_all_parts=when_all_parts,
            only_from=only_from,
        )
        event = StatusEvent(
            id=new_time_ordered_uuid(),
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
        url = target.url if status.is_reported else None
        rest = [
            self._writes.event(
                event_id=event.id,
                message_uuid=message.uuid,
                status=status,
                occurred_at=now,
                error=error,
                webhook_url=url,
            )
        ]
        if url:
            job = webhook_job(
                event_id=event.id,
                account_id=message.account_id,
                application_id=message.application_id,
                message_uuid=message.uuid,
                url=url,
                body=render_status(event, target.version),
            )
            rest += self._writes.enqueue([job], now)
        return guarded(move, [*rest, *then])
