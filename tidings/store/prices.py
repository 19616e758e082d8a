"""The operator's price list."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.pricing import PriceEntry
from tidings.store.tables import prices


async def load_prices(conn: AsyncConnection) -> list[PriceEntry]:
    rows = (await conn.execute(select(prices))).mappings()
    return [
        PriceEntry(
            channel=row["channel"],
            prefix=row["prefix"],
            price=Decimal(row["price"]),
            currency=row["currency"],
            country=row["country"],
            network_name=row["network_name"],
        )
        for row in rows
    ]


async def upsert_price(conn: AsyncConnection, entry: PriceEntry) -> None:
    await conn.execute(
        delete(prices).where(prices.c.channel == entry.channel, prices.c.prefix == entry.prefix)
    )
    await conn.execute(
        insert(prices).values(
            channel=entry.channel,
            prefix=entry.prefix,
            price=entry.price,
            currency=entry.currency,
            country=entry.country,
            network_name=entry.network_name,
        )
    )


async def delete_price(conn: AsyncConnection, channel: str, prefix: str) -> bool:
    result = await conn.execute(delete(prices).where(prices.c.channel == channel, prices.c.prefix == prefix))
    return result.rowcount > 0
