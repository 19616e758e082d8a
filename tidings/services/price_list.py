"""Editing the operator's price list (the CLI's `tidings prices`).

Running API processes see a change when they next reload the list (services/pricing.py,
every `price_refresh_seconds`); nothing here touches their in-memory copy.
"""

from __future__ import annotations

from collections.abc import Sequence

from tidings.domain.pricing import PriceEntry
from tidings.store import prices as price_store
from tidings.store.database import Database


async def list_prices(database: Database) -> list[PriceEntry]:
    """Every entry, by channel and then prefix."""
    async with database.read() as conn:
        entries = await price_store.load_prices(conn)
    return sorted(entries, key=lambda entry: (entry.channel, entry.prefix))


async def set_price(database: Database, entry: PriceEntry) -> None:
    """Adds the entry, or replaces the one of the same channel and prefix."""
    async with database.begin() as conn:
        await price_store.upsert_price(conn, entry)


async def remove_price(database: Database, channel: str, prefix: str) -> bool:
    """False when the channel has no entry for the prefix (a leading "+" is ignored, as when set)."""
    async with database.begin() as conn:
        return await price_store.delete_price(conn, channel, prefix.removeprefix("+"))


async def load_prices(database: Database, entries: Sequence[PriceEntry], *, replace: bool = False) -> None:
    """Sets every entry in one transaction; where one channel and prefix comes twice, the later
    wins. With `replace`, every entry not among them is removed in the same transaction, so API
    processes never load a half-replaced list."""
    keep = {(entry.channel, entry.prefix) for entry in entries}
    async with database.begin() as conn:
        if replace:
            for old in await price_store.load_prices(conn):
                if (old.channel, old.prefix) not in keep:
                    await price_store.delete_price(conn, old.channel, old.prefix)
        for entry in entries:
            await price_store.upsert_price(conn, entry)
