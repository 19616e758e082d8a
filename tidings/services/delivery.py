"""The worker's side of sending: hand an accepted message to its connector, and apply the reports
that come back."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.channels.base import ProviderUnavailable, SubmitRejected
from tidings.channels.routing import NoRoute, Router
from tidings.domain.delivery_errors import DeliveryError, DeliveryErrorCode
from tidings.domain.message import Status
from tidings.queue import jobs as job_store
from tidings.queue.jobs import ClaimedJob, NewJob, enqueue
from tidings.queue.worker import RetryLater
from tidings.services.job_kinds import JobKind
from tidings.services.statuses import StatusRecorder, Submission
from tidings.store import messages as message_store
from tidings.store.balances import refund
from tidings.store.database import Database

log = logging.getLogger("tidings.delivery")


def _now() -> datetime:
    return datetime.now(UTC)


class DeliveryService:
    def __init__(
        self,
        database: Database,
        router: Router,
        recorder: StatusRecorder,
        *,
        max_attempts: int,
        wake_worker: Callable[[], None],
    ) -> None:
        self._database = database
        self._router = router
        self._recorder = recorder
        self._max_attempts = max_attempts
        self._wake_worker = wake_worker

    async def deliver(self, job: ClaimedJob) -> bool:
        uuid = job.payload["message_uuid"]
        async with self._database.read() as conn:
            message = await message_store.get_message(conn, uuid)
        if message is None or message.status is not Status.ACCEPTED:
            return False  # already handed over by an earlier run of this job
        now = _now()
        if message.ttl is not None and now > message.created_at + timedelta(seconds=message.ttl):
            await self._reject(uuid, DeliveryError.of(DeliveryErrorCode.TTL_ACTIVATED), job)
            return True
        try:
            connector = self._router.route(message)
        except NoRoute as error:
            await self._reject(uuid, DeliveryError.of(DeliveryErrorCode.UNROUTABLE, str(error)), job)
            return True
        try:
            result = await connector.submit(message)
        except SubmitRejected as rejected:
            await self._reject(uuid, rejected.error, job)
            return True
        except ProviderUnavailable as unavailable:
            raise RetryLater(str(unavailable), unavailable.retry_after) from None
        submission = Submission(
            provider=connector.name,
            provider_ref=result.provider_ref,
            segments=result.segments,
            usage=result.usage,
        )
        async with self._database.begin() as conn:
            now = _now()
            if (
                await self._recorder.record(conn, message, Status.SUBMITTED, now=now, submission=submission)
                is None
            ):
                return False  # another run of this job got there first
            follow_ups = [
                NewJob(
                    kind=JobKind.PROVIDER_REPORT.value,
                    payload={
                        "message_uuid": uuid,
                        "status": report.status.value,
                        "provider_ref": report.provider_ref,
                        "error_code": int(report.error.code) if report.error else None,
                        "error_detail": report.error.detail if report.error else None,
                        "network_code": report.network_code,
                    },
                    run_at=now + report.after,
                )
                for report in result.reports
            ]
            await enqueue(conn, follow_ups, now=now, default_max_attempts=self._max_attempts)
            settled = await job_store.complete(conn, job, now=now)
        self._wake_worker()
        return settled

    async def apply_report(self, job: ClaimedJob) -> bool:
        payload = job.payload
        error = None
        if payload.get("error_code") is not None:
            error = DeliveryError.of(DeliveryErrorCode(payload["error_code"]), payload.get("error_detail"))
        async with self._database.begin() as conn:
            message = await message_store.get_message(conn, payload["message_uuid"])
            if message is None:
                log.warning("a report for unknown message %s was dropped", payload["message_uuid"])
                return False
            now = _now()
            await self._recorder.record(
                conn,
                message,
                Status(payload["status"]),
                now=now,
                error=error,
                network_code=payload.get("network_code"),
            )
            settled = await job_store.complete(conn, job, now=now)
        self._wake_worker()
        return settled

    async def on_delivery_abandoned(self, conn: AsyncConnection, job: ClaimedJob, reason: str) -> None:
        """A message whose delivery job died is told to its owner, never left hanging; called in the
        transaction that buries the job."""
        if job.kind == JobKind.DELIVER_MESSAGE.value:
            error = DeliveryError.of(DeliveryErrorCode.PROVIDER_ERROR, reason[:500])
            await self._reject_in(conn, job.payload["message_uuid"], error, now=_now())
            self._wake_worker()

    async def _reject(self, uuid: str, error: DeliveryError, job: ClaimedJob) -> None:
        """Ends the message `rejected` before any provider took it, settling `job` with it."""
        async with self._database.begin() as conn:
            now = _now()
            await self._reject_in(conn, uuid, error, now=now)
            await job_store.complete(conn, job, now=now)
        self._wake_worker()

    async def _reject_in(
        self, conn: AsyncConnection, uuid: str, error: DeliveryError, *, now: datetime
    ) -> None:
        # Nothing was sent, so nothing is charged: the price taken at accept goes back to the
        # account and the rejection reports no usage.
        message = await message_store.get_message(conn, uuid)
        if message is None or message.status is not Status.ACCEPTED:
            return
        unpriced = replace(message, usage=None)
        if await self._recorder.record(conn, unpriced, Status.REJECTED, now=now, error=error) is None:
            return
        if message.usage is not None:
            await refund(conn, message.account_id, uuid, message.usage.price)
