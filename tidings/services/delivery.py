"""The worker's side of sending: hand an accepted message to its connector, and record that it did."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from tidings.channels.base import ProviderUnavailable, Submission, SubmitRejected
from tidings.channels.routing import NoRoute, Router
from tidings.domain.delivery_errors import DeliveryError, DeliveryErrorCode
from tidings.domain.message import Message, Status
from tidings.metrics import CONNECTOR_SUBMITS
from tidings.queue.jobs import RetryPolicy
from tidings.queue.kinds import Done, Job, JobKind, Plan, RetryLater
from tidings.services.connector_throughput import ConnectorThroughput
from tidings.services.statuses import Handover, StatusRecorder, WebhookTarget
from tidings.store.lookups import Lookups
from tidings.store.statements import Execute
from tidings.store.writes import Writes

log = logging.getLogger("tidings.delivery")


def _now() -> datetime:
    return datetime.now(UTC)


class DeliverMessage(BaseModel):
    message_uuid: str


@dataclass(frozen=True)
class HandedOver:
    message: Message
    target: WebhookTarget
    connector: str
    submission: Submission


@dataclass(frozen=True)
class Refused:
    """Never handed over (ttl passed, no route, the provider said no): ends `rejected`."""

    message: Message
    target: WebhookTarget
    error: DeliveryError


@dataclass(frozen=True)
class AlreadyHandled:
    pass


DeliveryResult = HandedOver | Refused | AlreadyHandled


class DeliverMessages(JobKind[DeliverMessage, DeliveryResult]):
    name = "deliver_message"
    payload_type = DeliverMessage

    def __init__(
        self,
        lookups: Lookups,
        router: Router,
        recorder: StatusRecorder,
        writes: Writes,
        *,
        retry: RetryPolicy,
        throughput: ConnectorThroughput | None = None,
    ) -> None:
        self._throughput = throughput
        self._lookups = lookups
        self._router = router
        self._recorder = recorder
        self._writes = writes
        self.retry = retry

    async def perform(self, job: Job[DeliverMessage]) -> DeliveryResult:
        tracked = await self._lookups.messages.load(job.payload.message_uuid)
        if tracked is None or tracked.message.status is not Status.ACCEPTED:
            return AlreadyHandled()  # handed over by an earlier run of this job, or revoked
        message, target = tracked.message, self._recorder.target(tracked)
        if message.ttl is not None and _now() > message.created_at + timedelta(seconds=message.ttl):
            return Refused(message, target, DeliveryError.of(DeliveryErrorCode.TTL_ACTIVATED))
        try:
            connector = self._router.route(message)
        except NoRoute as error:
            return Refused(message, target, DeliveryError.of(DeliveryErrorCode.UNROUTABLE, str(error)))
        if self._throughput is not None:
            await self._throughput.take_turn(connector.name)
        try:
            submission = await connector.submit(message)
        except SubmitRejected as rejected:
            CONNECTOR_SUBMITS.labels(connector.name, "refused").inc()
            return Refused(message, target, rejected.error)
        except ProviderUnavailable as unavailable:
            CONNECTOR_SUBMITS.labels(connector.name, "unavailable").inc()
            raise RetryLater(str(unavailable), unavailable.retry_after) from None
        CONNECTOR_SUBMITS.labels(connector.name, "submitted").inc()
        return HandedOver(message, target, connector.name, submission)

    async def plan(self, job: Job[DeliverMessage], result: DeliveryResult) -> Plan:
        now = _now()
        if isinstance(result, Refused):
            return Plan(
                Done(),
                reject_unsent(self._recorder, self._writes, result.message, result.target, result.error, now),
            )
        if isinstance(result, AlreadyHandled):
            return Plan(Done())
        message, submission = result.message, result.submission
        parts = self._writes.insert_parts(
            message_uuid=message.uuid,
            account_id=message.account_id,
            connector=result.connector,
            provider_refs=submission.parts,
            status=Status.SUBMITTED,
            now=now,
        )
        handover = Handover(result.connector, len(submission.parts), submission.usage)
        writes = self._recorder.change(
            message, Status.SUBMITTED, target=result.target, now=now, handover=handover, then=parts
        )
        return Plan(Done(), writes)

    async def abandon(self, job: Job[DeliverMessage], reason: str) -> Sequence[Execute]:
        """A message whose delivery job died is told to its owner, never left hanging."""
        tracked = await self._lookups.messages.load(job.payload.message_uuid)
        if tracked is None:
            return ()
        error = DeliveryError.of(DeliveryErrorCode.PROVIDER_ERROR, reason[:500])
        target = self._recorder.target(tracked)
        return reject_unsent(self._recorder, self._writes, tracked.message, target, error, _now())


def reject_unsent(
    recorder: StatusRecorder,
    writes: Writes,
    message: Message,
    target: WebhookTarget,
    error: DeliveryError,
    now: datetime,
) -> list[Execute]:
    """Ends a message `rejected` before any provider took it (only from `accepted`). Nothing was
    sent, so nothing is charged: the price taken at accept goes back to the account and the
    rejection reports no usage."""
    refund = writes.refund(message.account_id, message.uuid, message.usage.price) if message.usage else []
    unpriced = replace(message, usage=None)
    return recorder.change(
        unpriced,
        Status.REJECTED,
        target=target,
        now=now,
        error=error,
        only_from=(Status.ACCEPTED,),
        then=refund,
    )
