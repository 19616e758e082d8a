"""The one way in for what providers report: receipts and inbound messages, from any connector.

Every call records its event (and queues its webhook) and returns once that has committed, so a
connector can acknowledge its provider knowing nothing will be lost. Receipts ride the group
commit as statements. Inbound messages are routed first, by reads coalesced with those of the
other messages of the moment (who holds the address, the account's settings, the application:
store/lookups.py), and then ride the group commit as rows, as sends do; a message for nobody, as
its `unroutable_inbound` row. They used to be routed and stored in a shared transaction of their
own, one message after another, which held every process to about 250 inbound messages a second.
The reads and the write are not one transaction: a number given up in the milliseconds between
them still gets the message that arrived while it was held, as it would have had the message
come a moment sooner.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from tidings.domain.events import Receipt
from tidings.domain.inbound import InboundArrival, Received, Unroutable
from tidings.metrics import CONNECTOR_RECEIPTS
from tidings.services.inbound import InboundReceiver, stored
from tidings.services.receipts import ApplyReceipt, ReceiptApplier, ReceiptPayload
from tidings.store.group_commit import GroupCommitWriter
from tidings.store.lookups import Lookups
from tidings.store.writes import Writes


class MessageIngress:
    def __init__(
        self,
        lookups: Lookups,
        writer: GroupCommitWriter,
        writes: Writes,
        receipts: ReceiptApplier,
        inbound: InboundReceiver,
        *,
        wake_worker_at: Callable[[datetime], None],
    ) -> None:
        self._lookups = lookups
        self._writer = writer
        self._writes = writes
        self._receipts = receipts
        self._inbound = inbound
        self._wake_worker_at = wake_worker_at  # told when a job it queued falls due

    async def report(self, receipt: Receipt) -> None:
        _count(receipt)
        addressed = await self._receipts.address(receipt)
        if addressed is None:
            await self._schedule(receipt, at=datetime.now(UTC) + ApplyReceipt.UNKNOWN_PART_FIRST_WAIT)
            return
        await self._writer.write_background(self._receipts.writes(addressed))
        self._wake_worker_at(datetime.now(UTC))

    async def schedule(self, receipt: Receipt, *, at: datetime) -> None:
        _count(receipt)
        await self._schedule(receipt, at=at)

    async def _schedule(self, receipt: Receipt, *, at: datetime) -> None:
        job = ApplyReceipt.new(ReceiptPayload.of(receipt), run_at=at)
        await self._writer.write_background(self._writes.enqueue([job], datetime.now(UTC)))
        self._wake_worker_at(at)

    async def inbound(self, arrival: InboundArrival) -> Received | Unroutable:
        routed = await self._inbound.route(self._lookups, arrival)
        await self._writer.write(routed.inserts())
        outcome = stored(routed)
        if isinstance(outcome, Received) and outcome.route.url:
            self._wake_worker_at(datetime.now(UTC))
        return outcome


def _count(receipt: Receipt) -> None:
    """Counted as a connector hands it in (a scheduled one too: the simulator hands in its
    receipts ahead of their time)."""
    CONNECTOR_RECEIPTS.labels(receipt.connector, receipt.status.value).inc()
