"""Deleting what is past keeping, a bounded chunk per transaction.

Each delete takes at most `limit` rows, so a purge of millions of rows never holds the write lock
(SQLite's one writer, PostgreSQL's row locks) long enough to stall the accepts: the caller loops
until a chunk comes back short. Messages and webhook attempts are found through their
(account, time) indexes, one account at a time; a message's parts and events go with it
(`ON DELETE CASCADE`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.store.tables import accounts, jwt_replays, messages, unroutable_inbound, webhook_attempts


async def account_ids(conn: AsyncConnection) -> list[str]:
    return list((await conn.execute(select(accounts.c.api_key))).scalars())


async def delete_messages(conn: AsyncConnection, account_id: str, *, older_than: datetime, limit: int) -> int:
    chunk = (
        select(messages.c.uuid)
        .where(messages.c.account_id == account_id, messages.c.created_at < older_than)
        .limit(limit)
    )
    result = await conn.execute(delete(messages).where(messages.c.uuid.in_(chunk.scalar_subquery())))
    return result.rowcount


async def delete_webhook_attempts(
    conn: AsyncConnection, account_id: str, *, older_than: datetime, limit: int
) -> int:
    chunk = (
        select(webhook_attempts.c.id)
        .where(webhook_attempts.c.account_id == account_id, webhook_attempts.c.attempted_at < older_than)
        .limit(limit)
    )
    result = await conn.execute(
        delete(webhook_attempts).where(webhook_attempts.c.id.in_(chunk.scalar_subquery()))
    )
    return result.rowcount


async def delete_unroutable(conn: AsyncConnection, *, older_than: datetime, limit: int) -> int:
    chunk = select(unroutable_inbound.c.id).where(unroutable_inbound.c.received_at < older_than).limit(limit)
    result = await conn.execute(
        delete(unroutable_inbound).where(unroutable_inbound.c.id.in_(chunk.scalar_subquery()))
    )
    return result.rowcount


async def delete_expired_replays(conn: AsyncConnection, *, now: datetime, limit: int) -> int:
    """JWT ids whose tokens have expired: a replay of one is refused for its expiry anyway."""
    chunk = select(jwt_replays.c.jti).where(jwt_replays.c.expires_at < now).limit(limit)
    result = await conn.execute(delete(jwt_replays).where(jwt_replays.c.jti.in_(chunk.scalar_subquery())))
    return result.rowcount
