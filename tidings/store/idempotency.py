"""Idempotency keys: the first answer given to an account's key, kept for a day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.store.tables import idempotency_keys

# How long a key answers for; after that it is free again. The periodic clean-up removes older
# keys only every few minutes, so a row being there does not make it current.
KEPT_FOR = timedelta(hours=24)


@dataclass(frozen=True)
class KeptAnswer:
    request_hash: str
    message_uuid: str
    created_at: datetime

    def expired(self, now: datetime) -> bool:
        return self.created_at < now - KEPT_FOR


def idempotency_row(
    account_id: str, key: str, request_hash: str, message_uuid: str, now: datetime
) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "key": key,
        "request_hash": request_hash,
        "message_uuid": message_uuid,
        "created_at": now,
    }


async def find_answer(conn: AsyncConnection, account_id: str, key: str) -> KeptAnswer | None:
    row = (
        await conn.execute(
            select(
                idempotency_keys.c.request_hash,
                idempotency_keys.c.message_uuid,
                idempotency_keys.c.created_at,
            ).where(idempotency_keys.c.account_id == account_id, idempotency_keys.c.key == key)
        )
    ).first()
    return KeptAnswer(row.request_hash, row.message_uuid, row.created_at) if row else None


async def forget_expired(conn: AsyncConnection, account_id: str, key: str, *, now: datetime) -> None:
    """Frees a key whose day is over, so that its new use can be stored under it."""
    await conn.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.account_id == account_id,
            idempotency_keys.c.key == key,
            idempotency_keys.c.created_at < now - KEPT_FOR,
        )
    )


async def purge(conn: AsyncConnection, *, older_than: datetime, limit: int) -> int:
    """Keys past their day, at most `limit` at a time (store/retention.py says why)."""
    chunk = (
        select(idempotency_keys.c.account_id, idempotency_keys.c.key)
        .where(idempotency_keys.c.created_at < older_than)
        .limit(limit)
    )
    key = tuple_(idempotency_keys.c.account_id, idempotency_keys.c.key)
    result = await conn.execute(delete(idempotency_keys).where(key.in_(chunk)))
    return result.rowcount
