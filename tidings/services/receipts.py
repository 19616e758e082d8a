"""Applying a provider's receipt: the part it names moves on, and when the message's status moves
with it (domain rule: a message fails as soon as a part fails, with that part's error; it is
delivered when every part is, and read when every part is read), its event and webhook follow."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel

from tidings.domain.delivery_errors import DeliveryError, DeliveryErrorCode
from tidings.domain.events import Receipt
from tidings.domain.message import Message, Status, Usage
from tidings.queue.jobs import RetryPolicy
from tidings.queue.kinds import Done, Job, JobKind, Plan, Retry
from tidings.services.statuses import StatusRecorder, WebhookTarget
from tidings.store.lookups import Lookups
from tidings.store.parts import FoundPart
from tidings.store.statements import Execute
from tidings.store.writes import Writes, guarded

_FAILED = (Status.REJECTED, Status.UNDELIVERABLE)
_COMPLETED = (Status.DELIVERED, Status.READ)


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


@dataclass(frozen=True)
class Addressed:
    """A receipt and what it is about: its part, the part's message, where its webhooks go."""

    receipt: Receipt
    part: FoundPart
    message: Message
    target: WebhookTarget


class ReceiptApplier:
    def __init__(self, lookups: Lookups, recorder: StatusRecorder, writes: Writes) -> None:
        self._lookups = lookups
        self._recorder = recorder
        self._writes = writes

    async def address(self, receipt: Receipt) -> Addressed | None:
        """None when no part carries the receipt's reference (yet)."""
        found = await self._lookups.part(receipt.connector, receipt.provider_ref, receipt.account_id)
        if found is None:
            return None
        return Addressed(receipt, found.part, found.tracked.message, self._recorder.target(found.tracked))

    def writes(self, addressed: Addressed) -> list[Execute]:
        """The part moves (unless it is already there or past); the message follows where the
        rule says it does. A repeated or backwards receipt changes nothing."""
        receipt, part, message = addressed.receipt, addressed.part, addressed.message
        now = datetime.now(UTC)
        follow: list[Execute] = []
        if receipt.status in _FAILED or receipt.status in _COMPLETED:
            follow = self._recorder.change(
                message,
                receipt.status,
                target=addressed.target,
                now=now,
                error=receipt.error if receipt.status in _FAILED else None,
                network_code=receipt.network_code,
                usage=receipt.usage,
                when_all_parts=receipt.status in _COMPLETED,
            )
        move = self._writes.advance_part(
            part.message_uuid,
            part.index,
            receipt.status,
            error=receipt.error,
            network_code=receipt.network_code,
            now=now,
        )
        return [self._writes.lock_message(message.uuid), *guarded(move, follow)]


class ApplyReceipt(JobKind[ReceiptPayload, Addressed | None]):
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

    async def perform(self, job: Job[ReceiptPayload]) -> Addressed | None:
        return await self._applier.address(job.payload.receipt())

    async def plan(self, job: Job[ReceiptPayload], result: Addressed | None) -> Plan:
        if result is None:
            return Plan(Retry("no part carries this provider reference yet"))
        return Plan(Done(), self._applier.writes(result))
