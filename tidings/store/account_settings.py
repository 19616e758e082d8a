"""An account's balance, credit, status, default SMS callbacks and API secrets, as stored."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.account import AccountStatus
from tidings.domain.account_settings import ApiSecret, Balance, CallbackSettings
from tidings.store.tables import account_secrets, accounts

CallbackColumn = Literal["mo_callback_url", "dr_callback_url"]


async def lock_account(conn: AsyncConnection, api_key: str) -> bool:
    """Serialises changes to one account's secrets (a row lock on PostgreSQL; SQLite's BEGIN
    IMMEDIATE already holds the write lock). False when there is no such account."""
    query = select(accounts.c.api_key).where(accounts.c.api_key == api_key).with_for_update()
    return (await conn.execute(query)).first() is not None


# --- money and status ---------------------------------------------------------------------


async def get_balance(conn: AsyncConnection, api_key: str) -> Balance | None:
    query = select(accounts.c.balance, accounts.c.auto_reload, accounts.c.currency).where(
        accounts.c.api_key == api_key
    )
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    return Balance(value=Decimal(row.balance), auto_reload=bool(row.auto_reload), currency=row.currency)


async def add_to_balance(conn: AsyncConnection, api_key: str, amount: Decimal) -> bool:
    """One relative update, so that it cannot lose a debit committed at the same moment."""
    result = await conn.execute(
        update(accounts).where(accounts.c.api_key == api_key).values(balance=accounts.c.balance + amount)
    )
    return result.rowcount > 0


async def set_credit_limit(conn: AsyncConnection, api_key: str, limit: Decimal | None) -> bool:
    result = await conn.execute(
        update(accounts).where(accounts.c.api_key == api_key).values(credit_limit=limit)
    )
    return result.rowcount > 0


async def set_messages_per_second(conn: AsyncConnection, api_key: str, value: float | None) -> bool:
    result = await conn.execute(
        update(accounts).where(accounts.c.api_key == api_key).values(messages_per_second=value)
    )
    return result.rowcount > 0


async def set_status(conn: AsyncConnection, api_key: str, status: AccountStatus) -> bool:
    result = await conn.execute(
        update(accounts).where(accounts.c.api_key == api_key).values(status=status.value)
    )
    return result.rowcount > 0


async def set_inbound_sms_api(conn: AsyncConnection, api_key: str, api: str) -> bool:
    result = await conn.execute(
        update(accounts).where(accounts.c.api_key == api_key).values(inbound_sms_api=api)
    )
    return result.rowcount > 0


async def get_inbound_sms_api(conn: AsyncConnection, api_key: str) -> str | None:
    query = select(accounts.c.inbound_sms_api).where(accounts.c.api_key == api_key)
    return (await conn.execute(query)).scalar_one_or_none()


# --- default SMS callbacks ----------------------------------------------------------------


async def get_callbacks(conn: AsyncConnection, api_key: str) -> CallbackSettings | None:
    query = select(accounts.c.mo_callback_url, accounts.c.dr_callback_url).where(
        accounts.c.api_key == api_key
    )
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    return CallbackSettings(mo_callback_url=row.mo_callback_url, dr_callback_url=row.dr_callback_url)


async def set_callbacks(
    conn: AsyncConnection, api_key: str, values: Mapping[CallbackColumn, str | None]
) -> None:
    if values:
        await conn.execute(update(accounts).where(accounts.c.api_key == api_key).values(dict(values)))


# --- API secrets --------------------------------------------------------------------------


def _secret(row: RowMapping) -> ApiSecret:
    return ApiSecret(id=row["id"], account_id=row["account_id"], created_at=row["created_at"])


_SECRET_COLUMNS = (account_secrets.c.id, account_secrets.c.account_id, account_secrets.c.created_at)


async def list_secrets(conn: AsyncConnection, api_key: str) -> list[ApiSecret]:
    query = (
        select(*_SECRET_COLUMNS)
        .where(account_secrets.c.account_id == api_key)
        .order_by(account_secrets.c.created_at, account_secrets.c.id)
    )
    return [_secret(row) for row in (await conn.execute(query)).mappings()]


async def get_secret(conn: AsyncConnection, api_key: str, secret_id: str) -> ApiSecret | None:
    query = select(*_SECRET_COLUMNS).where(
        account_secrets.c.account_id == api_key, account_secrets.c.id == secret_id
    )
    row = (await conn.execute(query)).mappings().first()
    return _secret(row) if row else None


async def count_secrets(conn: AsyncConnection, api_key: str) -> int:
    query = select(func.count()).select_from(account_secrets).where(account_secrets.c.account_id == api_key)
    return int((await conn.execute(query)).scalar_one())


async def insert_secret(
    conn: AsyncConnection, *, secret_id: str, api_key: str, secret_hash: str, now: datetime
) -> ApiSecret:
    await conn.execute(
        insert(account_secrets).values(
            id=secret_id, account_id=api_key, secret_hash=secret_hash, created_at=now
        )
    )
    return ApiSecret(id=secret_id, account_id=api_key, created_at=now)


async def delete_secret(conn: AsyncConnection, api_key: str, secret_id: str) -> bool:
    result = await conn.execute(
        delete(account_secrets).where(
            account_secrets.c.account_id == api_key, account_secrets.c.id == secret_id
        )
    )
    return result.rowcount > 0
