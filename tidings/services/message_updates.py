"""PATCH /v1/messages/{uuid}: mark an inbound message read, revoke an outbound one.

Which status a channel lets a client set, and on which direction's messages, is the channel
registry's word. The message's connector tells the provider first; only then is the change
recorded. Neither change sends a status webhook: the client made it, and the published status
webhook has no `revoked`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tidings.channels.base import ProviderUnavailable, UpdateRefused
from tidings.channels.connectors import Connectors
from tidings.domain.channel_registry import MessageUpdate, UpdateStatus, channel_spec
from tidings.domain.errors import InvalidParameter, InvalidParams, NotFound, ProviderUnreachable
from tidings.domain.ids import new_time_ordered_uuid
from tidings.domain.message import Direction, MessageRecord, Status, moves_forward
from tidings.services.statuses import StatusRecorder
from tidings.store import message_views
from tidings.store.database import Database
from tidings.store.group_commit import GroupCommitWriter
from tidings.store.lookups import Lookups
from tidings.store.statements import Execute
from tidings.store.writes import Writes, guarded

# How long after it was sent a message may still be revoked (the RCS revocation guide).
REVOKE_WINDOW = timedelta(hours=24)
_TARGET_STATUS = {UpdateStatus.READ: Status.READ, UpdateStatus.REVOKED: Status.REVOKED}


def _refused(reason: str) -> InvalidParams:
    return InvalidParams([InvalidParameter("status", reason)])


def _too_late(status: Status) -> InvalidParams:
    return _refused(f"the message is already {status.value} and can no longer be revoked.")


class MessageUpdates:
    def __init__(
        self,
        database: Database,
        lookups: Lookups,
        connectors: Connectors,
        recorder: StatusRecorder,
        writer: GroupCommitWriter,
        writes: Writes,
    ) -> None:
        self._database = database
        self._lookups = lookups
        self._connectors = connectors
        self._recorder = recorder
        self._writer = writer
        self._writes = writes

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
        await self._writer.write_background(await self._recorded(record), soon=True)
        if status is UpdateStatus.REVOKED:
            await self._check_revoked(record.uuid)

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
            if record.status is not Status.REVOKED and not moves_forward(record.status, Status.REVOKED):
                raise _too_late(record.status)
            if datetime.now(UTC) - record.created_at > REVOKE_WINDOW:
                raise _refused("a message can be revoked within 24 hours of being sent only.")

    async def _check_revoked(self, uuid: str) -> None:
        """The revocation is written only if the message is still undelivered when it commits: a
        receipt may have landed while the provider was being asked. Then the client is told."""
        tracked = await self._lookups.messages.load(uuid)
        if tracked is not None and tracked.message.status is not Status.REVOKED:
            raise _too_late(tracked.message.status)

    async def _recorded(self, record: MessageRecord) -> list[Execute]:
        now = datetime.now(UTC)
        if record.direction is Direction.INBOUND:
            event = self._writes.event(
                event_id=new_time_ordered_uuid(),
                message_uuid=record.uuid,
                status=Status.READ,
                occurred_at=now,
                error=None,
                webhook_url=None,
            )
            return guarded(self._writes.mark_inbound(record.uuid, Status.READ, now), [event])
        tracked = await self._lookups.messages.load(record.uuid)
        if tracked is None:
            return []
        message, target = tracked.message, self._recorder.target(tracked)
        # Revoked before any provider took it, nothing was sent and nothing is charged; after, the
        # charge stands. Whichever state the message is in when this commits decides.
        refund = (
            self._writes.refund(message.account_id, message.uuid, message.usage.price)
            if message.usage
            else []
        )
        unsent = self._recorder.change(
            message, Status.REVOKED, target=target, now=now, only_from=(Status.ACCEPTED,), then=refund
        )
        sent = self._recorder.change(
            message, Status.REVOKED, target=target, now=now, only_from=(Status.SUBMITTED,)
        )
        return [*unsent, *sent]
