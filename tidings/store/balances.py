"""Money moving back to an account outside the accept path."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.store.tables import accounts, messages


async def refund(conn: AsyncConnection, account_id: str, message_uuid: str, amount: Decimal) -> None:
    """Give back what a message was charged, and record that it cost nothing."""
    await conn.execute(
        update(accounts).where(accounts.c.api_key == account_id).values(balance=accounts.c.balance + amount)
    )
    await conn.execute(update(messages).where(messages.c.uuid == message_uuid).values(price=0))
