"""PATCH /v1/messages/{uuid}: mark an inbound message read, revoke an outbound one.

Which status a channel lets a client set, and on which direction's messages, is the channel
registry's word. The message's connector tells the provider first; only then is the change
recorded. Neither change sends a status webhook: the client made it, and the published status
webhook has no `revoked`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.channels.base import ProviderUnavailable, UpdateRefused
from tidings.channels.connectors import Connectors
from tidings.domain.channel_registry import MessageUpdate, UpdateStatus, channel_spec
from tidings.domain.errors import InvalidParameter, InvalidParams, NotFound, ProviderUnreachable
from tidings.domain.message import Direction, MessageRecord, Status
from tidings.services.statuses import StatusRecorder
from tidings.store import message_views
from tidings.store import messages as message_store
from tidings.store.balances import refund
from tidings.store.database import Database

# How long after it was sent a message may still be revoked (the RCS revocation guide).
REVOKE_WINDOW = timedelta(hours=24)
_TARGET_STATUS = {UpdateStatus.READ: Status.READ, UpdateStatus.REVOKED: Status.REVOKED}


def _refused(reason: str) -> InvalidParams:
    return InvalidParams([InvalidParameter("status", reason)])


class MessageUpdates:
    def __init__(self, database: Database, connectors: Connectors, recorder: StatusRecorder) -> None:
        self._database = database
        self._connectors = connectors
        self._recorder = recorder

    async def update(self, account_id: str, message_uuid: str, update: MessageUpdate) -> None:
        async with self._database.read() as conn:
            record = await message_views.get_record(conn, message_uuid, account_id)
        if record is None:
            raise NotFound(f"No message {message_uuid} was found.")
        status = update.status
        self._check(record, status)
        if record.status is _TARGET_STATUS[status]:
            return  # already so: nothing to tell anyone
        connector = self._connectors.get(record.connector) if record.connector else None
        if connector is not None:
            try:
                await connector.update(record, update)
            except UpdateRefused as refused:
                raise _refused(f"cannot be set: {refused}.") from None
            except ProviderUnavailable as unavailable:
                raise ProviderUnreachable(str(unavailable)) from None
        async with self._database.begin() as conn:
            await self._record(conn, record, status)

    def _check(self, record: MessageRecord, status: UpdateStatus) -> None:
        spec = channel_spec(record.channel)
        direction = spec.updates.get(status) if spec else None
        if direction is None:
            raise _refused(f"`{status.value}` cannot be set on a {record.channel.value} message.")
        if direction is not record.direction:
            raise _refused(
                f"`{status.value}` can be set on {direction.value} {record.channel.value} messages only."
            )
        if status is UpdateStatus.REVOKED:
            if record.status not in (Status.ACCEPTED, Status.SUBMITTED, Status.REVOKED):
                raise _refused(f"the message is already {record.status.value} and can no longer be revoked.")
            if datetime.now(UTC) - record.created_at > REVOKE_WINDOW:
                raise _refused("a message can be revoked within 24 hours of being sent only.")

    async def _record(self, conn: AsyncConnection, record: MessageRecord, status: UpdateStatus) -> None:
        now = datetime.now(UTC)
        if record.direction is Direction.INBOUND:
            await message_store.mark_inbound(conn, record.uuid, Status.READ, now=now)
            return
        message = await message_store.get_message(conn, record.uuid)
        if message is None:
            return
        event = await self._recorder.record(conn, message, Status.REVOKED, now=now)
        # Revoked before any provider took it: nothing was sent, so nothing is charged.
        if event is not None and message.status is Status.ACCEPTED and message.usage is not None:
            await refund(conn, message.account_id, message.uuid, message.usage.price)
