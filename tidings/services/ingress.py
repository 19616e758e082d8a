"""The one way in for what providers report: receipts and inbound messages, from any connector.

Every call records its event (and queues its webhook) in a shared transaction and returns once
that has committed, so a connector can acknowledge its provider knowing nothing will be lost.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.events import Receipt
from tidings.domain.inbound import InboundArrival, Received, Unroutable
from tidings.queue.jobs import enqueue
from tidings.services.inbound import InboundReceiver
from tidings.services.receipts import ApplyReceipt, ReceiptApplier, ReceiptPayload
from tidings.store.shared_transactions import SharedTransactions


class MessageIngress:
    def __init__(
        self,
        shared: SharedTransactions,
        receipts: ReceiptApplier,
        inbound: InboundReceiver,
        *,
        wake_worker: Callable[[], None],
    ) -> None:
        self._shared = shared
        self._receipts = receipts
        self._inbound = inbound
        self._wake_worker = wake_worker

    async def report(self, receipt: Receipt) -> None:
        async def work(conn: AsyncConnection) -> None:
            if not await self._receipts.apply(conn, receipt):
                later = datetime.now(UTC) + ApplyReceipt.UNKNOWN_PART_FIRST_WAIT
                await _queue(conn, receipt, at=later)

        await self._shared.run(work)
        self._wake_worker()

    async def schedule(self, receipt: Receipt, *, at: datetime) -> None:
        async def work(conn: AsyncConnection) -> None:
            await _queue(conn, receipt, at=at)

        await self._shared.run(work)
        self._wake_worker()

    async def inbound(self, arrival: InboundArrival) -> Received | Unroutable:
        async def work(conn: AsyncConnection) -> Received | Unroutable:
            return await self._inbound.receive(conn, arrival)

        outcome = await self._shared.run(work)
        if isinstance(outcome, Received) and outcome.route.url:
            self._wake_worker()
        return outcome


async def _queue(conn: AsyncConnection, receipt: Receipt, *, at: datetime) -> None:
    await enqueue(conn, [ApplyReceipt.new(ReceiptPayload.of(receipt), run_at=at)], now=datetime.now(UTC))
