"""The worker's side of sending: hand an accepted message to its connector, and record that it did."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.channels.base import ProviderUnavailable, Submission, SubmitRejected
from tidings.channels.routing import NoRoute, Router
from tidings.domain.delivery_errors import DeliveryError, DeliveryErrorCode
from tidings.domain.message import Message, Status
from tidings.queue.jobs import RetryPolicy
from tidings.queue.kinds import Done, Job, JobKind, Outcome, RetryLater
from tidings.services.statuses import Handover, StatusRecorder
from tidings.store import messages as message_store
from tidings.store import parts as part_store
from tidings.store.balances import refund
from tidings.store.database import Database

log = logging.getLogger("tidings.delivery")


def _now() -> datetime:
    return datetime.now(UTC)


class DeliverMessage(BaseModel):
    message_uuid: str


@dataclass(frozen=True)
class HandedOver:
    message: Message
    connector: str
    submission: Submission


@dataclass(frozen=True)
class Refused:
    """Never handed over (ttl passed, no route, the provider said no): ends `rejected`."""

    error: DeliveryError


@dataclass(frozen=True)
class AlreadyHandled:
    pass


DeliveryResult = HandedOver | Refused | AlreadyHandled


class DeliverMessages(JobKind[DeliverMessage, DeliveryResult]):
    name = "deliver_message"
    payload_type = DeliverMessage

    def __init__(
        self, database: Database, router: Router, recorder: StatusRecorder, *, retry: RetryPolicy
    ) -> None:
        self._database = database
        self._router = router
        self._recorder = recorder
        self.retry = retry

    async def perform(self, job: Job[DeliverMessage]) -> DeliveryResult:
        async with self._database.read() as conn:
            message = await message_store.get_message(conn, job.payload.message_uuid)
        if message is None or message.status is not Status.ACCEPTED:
            return AlreadyHandled()  # handed over by an earlier run of this job, or revoked
        if message.ttl is not None and _now() > message.created_at + timedelta(seconds=message.ttl):
            return Refused(DeliveryError.of(DeliveryErrorCode.TTL_ACTIVATED))
        try:
            connector = self._router.route(message)
        except NoRoute as error:
            return Refused(DeliveryError.of(DeliveryErrorCode.UNROUTABLE, str(error)))
        try:
            submission = await connector.submit(message)
        except SubmitRejected as rejected:
            return Refused(rejected.error)
        except ProviderUnavailable as unavailable:
            raise RetryLater(str(unavailable), unavailable.retry_after) from None
        return HandedOver(message, connector.name, submission)

    async def record(
        self, conn: AsyncConnection, job: Job[DeliverMessage], result: DeliveryResult
    ) -> Outcome:
        now = _now()
        if isinstance(result, Refused):
            await reject_unsent(conn, self._recorder, job.payload.message_uuid, result.error, now=now)
        elif isinstance(result, HandedOver):
            handover = Handover(result.connector, len(result.submission.parts), result.submission.usage)
            event = await self._recorder.record(
                conn, result.message, Status.SUBMITTED, now=now, handover=handover
            )
            if event is not None:  # else another run of this job got there first
                await part_store.insert_parts(
                    conn,
                    message_uuid=result.message.uuid,
                    account_id=result.message.account_id,
                    connector=result.connector,
                    provider_refs=result.submission.parts,
                    status=Status.SUBMITTED,
                    now=now,
                )
        return Done()

    async def abandon(self, conn: AsyncConnection, job: Job[DeliverMessage], reason: str) -> None:
        """A message whose delivery job died is told to its owner, never left hanging."""
        error = DeliveryError.of(DeliveryErrorCode.PROVIDER_ERROR, reason[:500])
        await reject_unsent(conn, self._recorder, job.payload.message_uuid, error, now=_now())


async def reject_unsent(
    conn: AsyncConnection, recorder: StatusRecorder, uuid: str, error: DeliveryError, *, now: datetime
) -> None:
    """Ends a message `rejected` before any provider took it. Nothing was sent, so nothing is
    charged: the price taken at accept goes back to the account and the rejection reports no usage."""
    message = await message_store.get_message(conn, uuid)
    if message is None or message.status is not Status.ACCEPTED:
        return
    unpriced = replace(message, usage=None)
    if await recorder.record(conn, unpriced, Status.REJECTED, now=now, error=error) is None:
        return
    if message.usage is not None:
        await refund(conn, message.account_id, uuid, message.usage.price)
