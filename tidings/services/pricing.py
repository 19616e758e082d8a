"""Pricing a message when it is accepted, from the operator's price list held in memory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from decimal import Decimal

from tidings.domain.billing import billable_parts
from tidings.domain.message import Message, Usage
from tidings.domain.pricing import PriceEntry, PriceList
from tidings.store import prices as price_store
from tidings.store.database import Database

log = logging.getLogger("tidings.pricing")


@dataclass(frozen=True)
class Quote:
    usage: Usage
    parts: int


class Pricing:
    """The current price list, reloaded from the database every `refresh_seconds` so that every
    process sees the operator's changes; quoting never touches the database."""

    def __init__(self, database: Database, *, default: PriceEntry, refresh_seconds: float) -> None:
        self._database = database
        self._default = default
        self._refresh_seconds = refresh_seconds
        self._list = PriceList([])
        self._task: asyncio.Task[None] | None = None

    @property
    def price_list(self) -> PriceList:
        return self._list

    async def reload(self) -> None:
        async with self._database.read() as conn:
            self._list = PriceList(await price_store.load_prices(conn))

    async def start(self) -> None:
        await self.reload()
        self._task = asyncio.create_task(self._refresh(), name="tidings-prices")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def entry_for(self, channel: str, destination: str) -> PriceEntry:
        return self._list.quote(channel, destination) or self._default

    def quote(self, message: Message) -> Quote:
        entry = self.entry_for(message.channel.value, message.to)
        parts = billable_parts(message)
        return Quote(usage=Usage(currency=entry.currency, price=entry.price * parts), parts=parts)

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            try:
                await self.reload()
            except Exception:
                log.exception("reloading the price list failed")


def default_price(currency: str, price: str) -> PriceEntry:
    return PriceEntry(channel="*", prefix="", price=Decimal(price), currency=currency)
