"""Applying a provider's receipt: the part it names moves on, and when the message's combined
status moves with it, the status is recorded and its webhook queued, all in one transaction."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.delivery_errors import DeliveryError, DeliveryErrorCode
from tidings.domain.events import Receipt
from tidings.domain.message import Status, Usage, moves_forward
from tidings.domain.parts import combined_status
from tidings.queue.jobs import RetryPolicy
from tidings.queue.kinds import DatabaseOnlyKind, Done, Job, Outcome, Retry
from tidings.services.statuses import StatusRecorder
from tidings.store import messages as message_store
from tidings.store import parts as part_store


class ReceiptPayload(BaseModel):
    """A receipt as a durable job: one to apply later (the simulator's network delay), or one
    that arrived before its part was recorded and waits for it."""

    connector: str
    provider_ref: str
    status: Status
    occurred_at: datetime
    error_code: int | None = None
    error_detail: str | None = None
    network_code: str | None = None
    price: Decimal | None = None
    currency: str | None = None
    account_id: str | None = None

    @classmethod
    def of(cls, receipt: Receipt) -> ReceiptPayload:
        return cls(
            connector=receipt.connector,
            provider_ref=receipt.provider_ref,
            status=receipt.status,
            occurred_at=receipt.occurred_at,
            error_code=int(receipt.error.code) if receipt.error else None,
            error_detail=receipt.error.detail if receipt.error else None,
            network_code=receipt.network_code,
            price=receipt.usage.price if receipt.usage else None,
            currency=receipt.usage.currency if receipt.usage else None,
            account_id=receipt.account_id,
        )

    def receipt(self) -> Receipt:
        error = None
        if self.error_code is not None:
            error = DeliveryError.of(DeliveryErrorCode(self.error_code), self.error_detail)
        usage = Usage(self.currency, self.price) if self.price is not None and self.currency else None
        return Receipt(
            connector=self.connector,
            provider_ref=self.provider_ref,
            status=self.status,
            occurred_at=self.occurred_at,
            error=error,
            network_code=self.network_code,
            usage=usage,
            account_id=self.account_id,
        )


class ReceiptApplier:
    def __init__(self, recorder: StatusRecorder) -> None:
        self._recorder = recorder

    async def apply(self, conn: AsyncConnection, receipt: Receipt) -> bool:
        """False when no part carries this reference (yet); True once applied, or when it
        changes nothing (a repeat, or a report that would move the part backwards)."""
        part = await part_store.find_part(
            conn,
            connector=receipt.connector,
            provider_ref=receipt.provider_ref,
            account_id=receipt.account_id,
        )
        if part is None:
            return False
        now = datetime.now(UTC)
        moved = await part_store.advance_part(
            conn, part, receipt.status, error=receipt.error, network_code=receipt.network_code, now=now
        )
        if not moved:
            return True
        combined = combined_status(await part_store.part_states(conn, part.message_uuid))
        message = await message_store.get_message(conn, part.message_uuid)
        if message is not None and moves_forward(message.status, combined.status):
            await self._recorder.record(
                conn,
                message,
                combined.status,
                now=now,
                error=combined.error,
                network_code=receipt.network_code,
                usage=receipt.usage,
            )
        return True


class ApplyReceipt(DatabaseOnlyKind[ReceiptPayload]):
    """A receipt waiting for its time, or for its part: a carrier's receipt can overtake the
    answer to its own submit, so an unknown reference is tried again for a few minutes before
    the receipt is given up (and kept, dead, for inspection).

    The receipts of one part apply in the order they were queued: a `read` that falls due while
    the `delivered` before it still waits for its part waits behind it. Overtaking, it would move
    the part past `delivered`, which would then change nothing, and the message would never be
    reported delivered."""

    name = "apply_receipt"
    payload_type = ReceiptPayload
    retry = RetryPolicy(max_attempts=30, base_seconds=0.05, max_seconds=30.0)
    UNKNOWN_PART_FIRST_WAIT = timedelta(milliseconds=50)

    def __init__(self, applier: ReceiptApplier) -> None:
        self._applier = applier

    @classmethod
    def ordering_key(cls, payload: ReceiptPayload) -> str:
        # A provider's reference may be long; the key column holds 100 characters.
        part = hashlib.sha256(f"{payload.connector}\x00{payload.provider_ref}".encode()).hexdigest()
        return f"receipt:{part}"

    async def record(self, conn: AsyncConnection, job: Job[ReceiptPayload], result: None) -> Outcome:
        if await self._applier.apply(conn, job.payload.receipt()):
            return Done()
        return Retry("no part carries this provider reference yet")
